package oraclesrc

import (
	"errors"
	"math/rand"
	"reflect"
	"testing"
)

func ref(k Kind, n string) ObjectRef { return ObjectRef{k, n} }

func TestPlanRestore(t *testing.T) {
	objs := []Object{
		{Kind: KindTrigger, Name: "T_BI", DependsOn: []ObjectRef{ref(KindTable, "ORDERS")}},
		{Kind: KindView, Name: "A_TOP", DependsOn: []ObjectRef{ref(KindView, "Z_BASE"), ref(KindView, "M_MID")}},
		{Kind: KindView, Name: "M_MID", DependsOn: []ObjectRef{ref(KindView, "Z_BASE"), ref(KindFunction, "F")}},
		{Kind: KindView, Name: "Z_BASE", DependsOn: []ObjectRef{ref(KindTable, "ORDERS"), ref(KindView, "OTHER_SCHEMA_V")}},
		{Kind: KindView, Name: "B_FREE"},
		{Kind: KindTable, Name: "ORDERS"},
		{Kind: KindTable, Name: "CUSTOMERS"},
		// FK cycle between tables and a self reference: harmless, FKs come after the data.
		{Kind: KindRefConstraint, Name: "ORD_CUST_FK", DependsOn: []ObjectRef{ref(KindTable, "ORDERS"), ref(KindTable, "CUSTOMERS")}},
		{Kind: KindRefConstraint, Name: "CUST_LAST_ORDER_FK", DependsOn: []ObjectRef{ref(KindTable, "CUSTOMERS"), ref(KindTable, "ORDERS")}},
		{Kind: KindRefConstraint, Name: "CUST_PARENT_FK", DependsOn: []ObjectRef{ref(KindTable, "CUSTOMERS")}},
		{Kind: KindConstraint, Name: "ORDERS_PK", DependsOn: []ObjectRef{ref(KindTable, "ORDERS")}},
		{Kind: KindIndex, Name: "ORD_DATE_IX", DependsOn: []ObjectRef{ref(KindTable, "ORDERS")}},
		{Kind: KindSequence, Name: "ORDER_SEQ"},
		{Kind: KindPackageBody, Name: "PKG", DependsOn: []ObjectRef{ref(KindPackage, "PKG")}},
		{Kind: KindPackage, Name: "PKG"},
		{Kind: KindFunction, Name: "F", DependsOn: []ObjectRef{ref(KindPackage, "PKG")}},
		{Kind: KindType, Name: "ADDR_T"},
		{Kind: KindType, Name: "ADDR_LIST_T", DependsOn: []ObjectRef{ref(KindType, "ADDR_T")}},
		{Kind: KindTypeBody, Name: "ADDR_T", DependsOn: []ObjectRef{ref(KindType, "ADDR_T")}},
		{Kind: KindSynonym, Name: "O", DependsOn: []ObjectRef{ref(KindTable, "ORDERS")}},
	}
	want := []Step{
		{PhaseSequences, ref(KindSequence, "ORDER_SEQ")},
		{PhaseTypes, ref(KindType, "ADDR_T")},
		{PhaseTypes, ref(KindType, "ADDR_LIST_T")},
		{PhaseTables, ref(KindTable, "CUSTOMERS")},
		{PhaseTables, ref(KindTable, "ORDERS")},
		{PhaseConstraints, ref(KindConstraint, "ORDERS_PK")},
		{PhaseData, ref(KindTable, "CUSTOMERS")},
		{PhaseData, ref(KindTable, "ORDERS")},
		{PhaseCodeSpecs, ref(KindPackage, "PKG")},
		{PhaseCodeSpecs, ref(KindFunction, "F")}, // after PKG, which it calls
		{PhaseViews, ref(KindView, "B_FREE")},
		{PhaseViews, ref(KindView, "Z_BASE")},
		{PhaseViews, ref(KindView, "M_MID")},
		{PhaseViews, ref(KindView, "A_TOP")},
		{PhaseIndexes, ref(KindIndex, "ORD_DATE_IX")},
		{PhaseRefConstraints, ref(KindRefConstraint, "CUST_LAST_ORDER_FK")},
		{PhaseRefConstraints, ref(KindRefConstraint, "CUST_PARENT_FK")},
		{PhaseRefConstraints, ref(KindRefConstraint, "ORD_CUST_FK")},
		{PhaseCodeBodies, ref(KindTypeBody, "ADDR_T")},
		{PhaseCodeBodies, ref(KindPackageBody, "PKG")},
		{PhaseTriggers, ref(KindTrigger, "T_BI")},
		{PhaseSynonyms, ref(KindSynonym, "O")},
		{PhaseCompile, ObjectRef{}},
		{PhaseSequenceReset, ref(KindSequence, "ORDER_SEQ")},
	}
	// The plan must not depend on input order.
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		in := append([]Object(nil), objs...)
		rng.Shuffle(len(in), func(a, b int) { in[a], in[b] = in[b], in[a] })
		got, err := PlanRestore(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d:\n got %v\nwant %v", i, got, want)
		}
	}
}

func TestPlanRestoreErrors(t *testing.T) {
	tests := []struct {
		name  string
		objs  []Object
		cycle []ObjectRef // nil: not a cycle error
	}{
		{
			name: "view cycle with a bystander waiting behind it",
			objs: []Object{
				{Kind: KindView, Name: "V1", DependsOn: []ObjectRef{ref(KindView, "V2")}},
				{Kind: KindView, Name: "V2", DependsOn: []ObjectRef{ref(KindView, "V3")}},
				{Kind: KindView, Name: "V3", DependsOn: []ObjectRef{ref(KindView, "V1")}},
				{Kind: KindView, Name: "W", DependsOn: []ObjectRef{ref(KindView, "V1")}},
				{Kind: KindView, Name: "OK"},
			},
			cycle: []ObjectRef{ref(KindView, "V1"), ref(KindView, "V2"), ref(KindView, "V3")},
		},
		{
			name: "type cycle",
			objs: []Object{
				{Kind: KindType, Name: "A", DependsOn: []ObjectRef{ref(KindType, "B")}},
				{Kind: KindType, Name: "B", DependsOn: []ObjectRef{ref(KindType, "A")}},
			},
			cycle: []ObjectRef{ref(KindType, "A"), ref(KindType, "B")},
		},
		{name: "unknown kind", objs: []Object{{Kind: "DIMENSION", Name: "D"}}},
		{name: "duplicate", objs: []Object{{Kind: KindTable, Name: "T"}, {Kind: KindTable, Name: "T"}}},
	}
	for _, tt := range tests {
		_, err := PlanRestore(tt.objs)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		var ce *CycleError
		if errors.As(err, &ce) != (tt.cycle != nil) {
			t.Errorf("%s: err = %v", tt.name, err)
			continue
		}
		if ce != nil && !reflect.DeepEqual(ce.Objects, tt.cycle) {
			t.Errorf("%s: cycle = %v, want %v (%v)", tt.name, ce.Objects, tt.cycle, err)
		}
	}
	// Procedures that call each other are not an error: compile resolves them. C depends on
	// neither and goes first; the cycle follows by name.
	steps, err := PlanRestore([]Object{
		{Kind: KindProcedure, Name: "B", DependsOn: []ObjectRef{ref(KindProcedure, "A")}},
		{Kind: KindProcedure, Name: "A", DependsOn: []ObjectRef{ref(KindProcedure, "B")}},
		{Kind: KindProcedure, Name: "C"},
	})
	wantCode := []Step{{PhaseCodeSpecs, ref(KindProcedure, "C")}, {PhaseCodeSpecs, ref(KindProcedure, "A")},
		{PhaseCodeSpecs, ref(KindProcedure, "B")}, {PhaseCompile, ObjectRef{}}}
	if err != nil || !reflect.DeepEqual(steps, wantCode) {
		t.Errorf("mutually dependent procedures: %v, %v", steps, err)
	}
	if steps, err := PlanRestore(nil); err != nil || len(steps) != 1 || steps[0].Phase != PhaseCompile {
		t.Errorf("empty schema: %v, %v", steps, err)
	}
}
