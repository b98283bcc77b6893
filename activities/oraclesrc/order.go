package oraclesrc

import (
	"fmt"
	"sort"
	"strings"
)

// Kind is the kind of a schema object in a restore plan.
type Kind string

// Object kinds Bulwark restores. Constraint means a primary key, unique or check constraint;
// RefConstraint a foreign key.
const (
	KindSequence      Kind = "SEQUENCE"
	KindType          Kind = "TYPE"
	KindTable         Kind = "TABLE"
	KindConstraint    Kind = "CONSTRAINT"
	KindIndex         Kind = "INDEX"
	KindRefConstraint Kind = "REF_CONSTRAINT"
	KindPackage       Kind = "PACKAGE"
	KindFunction      Kind = "FUNCTION"
	KindProcedure     Kind = "PROCEDURE"
	KindView          Kind = "VIEW"
	KindTypeBody      Kind = "TYPE BODY"
	KindPackageBody   Kind = "PACKAGE BODY"
	KindTrigger       Kind = "TRIGGER"
	KindSynonym       Kind = "SYNONYM"
)

// Phase is one step of a schema restore, in the order they run.
type Phase int

// Restore phases. Data goes in after primary/unique/check constraints and before indexes and
// foreign keys: loading is faster without secondary indexes, and foreign keys added afterwards
// make cycles between tables (and self references) harmless. Package specs, functions and
// procedures come before views and indexes (views and function-based indexes call them); bodies
// come after views; triggers last so that none fires while data is loaded. CompileSchema then
// resolves whatever was created out of order, and sequences move past the restored data.
const (
	PhaseSequences Phase = iota
	PhaseTypes
	PhaseTables
	PhaseConstraints
	PhaseData
	PhaseCodeSpecs
	PhaseViews
	PhaseIndexes
	PhaseRefConstraints
	PhaseCodeBodies
	PhaseTriggers
	PhaseSynonyms
	PhaseCompile
	PhaseSequenceReset
)

var phaseNames = [...]string{"sequences", "types", "tables", "constraints", "data", "code specs",
	"views", "indexes", "foreign keys", "code bodies", "triggers", "synonyms", "compile", "sequence reset"}

func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

var kindPhase = map[Kind]Phase{
	KindSequence: PhaseSequences, KindType: PhaseTypes, KindTable: PhaseTables,
	KindConstraint: PhaseConstraints, KindPackage: PhaseCodeSpecs, KindFunction: PhaseCodeSpecs,
	KindProcedure: PhaseCodeSpecs, KindView: PhaseViews, KindIndex: PhaseIndexes,
	KindRefConstraint: PhaseRefConstraints, KindTypeBody: PhaseCodeBodies,
	KindPackageBody: PhaseCodeBodies, KindTrigger: PhaseTriggers, KindSynonym: PhaseSynonyms,
}

// ObjectRef names a schema object.
type ObjectRef struct {
	Kind Kind
	Name string
}

func (r ObjectRef) String() string { return string(r.Kind) + " " + r.Name }

// Object is a schema object to restore. DependsOn lists what it refers to (from
// USER_DEPENDENCIES, or the tables a constraint or index belongs to); references to objects that
// are not in the plan are ignored (they are outside the schema or not restored).
type Object struct {
	Kind      Kind
	Name      string
	DependsOn []ObjectRef
}

// Step is one action of a restore plan. For PhaseData and PhaseSequenceReset the Object is the
// table or sequence concerned; PhaseCompile has no object.
type Step struct {
	Phase  Phase
	Object ObjectRef
}

// CycleError reports views (or types) that depend on each other in a loop: no creation order
// exists for them.
type CycleError struct {
	Objects []ObjectRef // the objects on the cycle, sorted
}

func (e *CycleError) Error() string {
	names := make([]string, len(e.Objects))
	for i, o := range e.Objects {
		names[i] = o.String()
	}
	return "dependency cycle among " + strings.Join(names, ", ")
}

// PlanRestore orders objects for a schema restore. The result depends only on the set of objects
// and their dependencies, never on input order: within a phase objects that depend on each other
// are ordered dependencies first, and the rest by name. A cycle among views or types is a
// *CycleError; code units (package specs, functions, procedures, bodies, triggers) are ordered
// by their dependencies too, but a cycle among them is no error: Oracle creates them invalid and
// CompileSchema resolves them, so the units on it follow by name. Each table gets a data step;
// each sequence a reset step.
func PlanRestore(objs []Object) ([]Step, error) {
	byPhase := map[Phase][]Object{}
	seen := map[ObjectRef]bool{}
	for _, o := range objs {
		p, ok := kindPhase[o.Kind]
		if !ok {
			return nil, fmt.Errorf("plan restore: %s %q: unknown kind", o.Kind, o.Name)
		}
		ref := ObjectRef{o.Kind, o.Name}
		if seen[ref] {
			return nil, fmt.Errorf("plan restore: %s listed twice", ref)
		}
		seen[ref] = true
		byPhase[p] = append(byPhase[p], o)
	}
	var steps []Step
	for p := PhaseSequences; p <= PhaseSequenceReset; p++ {
		switch p {
		case PhaseData:
			for _, t := range sortedRefs(byPhase[PhaseTables]) {
				steps = append(steps, Step{Phase: PhaseData, Object: t})
			}
			continue
		case PhaseCompile:
			steps = append(steps, Step{Phase: PhaseCompile})
			continue
		case PhaseSequenceReset:
			for _, s := range sortedRefs(byPhase[PhaseSequences]) {
				steps = append(steps, Step{Phase: PhaseSequenceReset, Object: s})
			}
			continue
		}
		group := byPhase[p]
		var order []ObjectRef
		switch p {
		case PhaseViews, PhaseTypes:
			var err error
			if order, err = topoSort(group, false); err != nil {
				return nil, err
			}
		case PhaseCodeSpecs, PhaseCodeBodies, PhaseTriggers:
			order, _ = topoSort(group, true)
		default:
			order = sortedRefs(group)
		}
		for _, r := range order {
			steps = append(steps, Step{Phase: p, Object: r})
		}
	}
	return steps, nil
}

func refLess(a, b ObjectRef) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Kind < b.Kind
}

func sortedRefs(objs []Object) []ObjectRef {
	refs := make([]ObjectRef, len(objs))
	for i, o := range objs {
		refs[i] = ObjectRef{o.Kind, o.Name}
	}
	sort.Slice(refs, func(i, j int) bool { return refLess(refs[i], refs[j]) })
	return refs
}

// topoSort orders objs so each comes after the objects of the group it depends on, taking the
// smallest name whenever there is a choice (Kahn's algorithm). On a cycle it fails, or with
// tolerate appends the objects it could not order by name.
func topoSort(objs []Object, tolerate bool) ([]ObjectRef, error) {
	in := map[ObjectRef]bool{}
	for _, o := range objs {
		in[ObjectRef{o.Kind, o.Name}] = true
	}
	indeg := map[ObjectRef]int{}
	users := map[ObjectRef][]ObjectRef{}
	for _, o := range objs {
		ref := ObjectRef{o.Kind, o.Name}
		indeg[ref] += 0
		deps := map[ObjectRef]bool{}
		for _, d := range o.DependsOn {
			if in[d] && d != ref && !deps[d] {
				deps[d] = true
				indeg[ref]++
				users[d] = append(users[d], ref)
			}
		}
	}
	var ready []ObjectRef
	for r, n := range indeg {
		if n == 0 {
			ready = append(ready, r)
		}
	}
	var out []ObjectRef
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return refLess(ready[i], ready[j]) })
		r := ready[0]
		ready = ready[1:]
		out = append(out, r)
		for _, u := range users[r] {
			indeg[u]--
			if indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(out) < len(objs) {
		if !tolerate {
			return nil, &CycleError{Objects: cycleMembers(objs, indeg)}
		}
		var rest []Object
		for _, o := range objs {
			if indeg[ObjectRef{o.Kind, o.Name}] > 0 {
				rest = append(rest, o)
			}
		}
		out = append(out, sortedRefs(rest)...)
	}
	return out, nil
}

// cycleMembers returns the objects left with dependencies that sit on a cycle: those that can
// reach themselves through the remaining edges (not objects merely waiting behind a cycle).
func cycleMembers(objs []Object, indeg map[ObjectRef]int) []ObjectRef {
	deps := map[ObjectRef][]ObjectRef{}
	for _, o := range objs {
		ref := ObjectRef{o.Kind, o.Name}
		if indeg[ref] == 0 {
			continue
		}
		for _, d := range o.DependsOn {
			if indeg[d] > 0 {
				deps[ref] = append(deps[ref], d)
			}
		}
	}
	var members []ObjectRef
	for ref := range deps {
		seen := map[ObjectRef]bool{}
		stack := append([]ObjectRef(nil), deps[ref]...)
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if x == ref {
				members = append(members, ref)
				break
			}
			if !seen[x] {
				seen[x] = true
				stack = append(stack, deps[x]...)
			}
		}
	}
	sort.Slice(members, func(i, j int) bool { return refLess(members[i], members[j]) })
	return members
}
