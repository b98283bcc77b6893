package oraclesrc

import (
	"fmt"
	"regexp"
	"strings"
)

// plsqlStart matches the start of a statement whose body is PL/SQL: it contains semicolons
// and ends at a line holding only "/".
var plsqlStart = regexp.MustCompile(`(?is)^(CREATE\s+(OR\s+REPLACE\s+)?((NON)?EDITIONABLE\s+)?` +
	`(PACKAGE|PROCEDURE|FUNCTION|TRIGGER|TYPE|LIBRARY)\b|DECLARE\b|BEGIN\b)`)

// SplitDDL cuts DBMS_METADATA output (SQLTERMINATOR on) into statements ready to execute:
//
//   - A PL/SQL unit (CREATE PACKAGE, PACKAGE BODY, PROCEDURE, FUNCTION, TRIGGER, TYPE, TYPE
//     BODY, LIBRARY, or an anonymous DECLARE/BEGIN block) ends at a line holding only "/"; its
//     own semicolons, including the last "END x;", are kept.
//   - Any other statement ends at ";" (dropped: Oracle rejects it over OCI with ORA-00911) or
//     at a "/" line.
//
// Terminators inside 'strings' (doubled quotes escape), q'[quoted]' strings (any delimiter, with
// [] {} () <> pairs), "quoted identifiers", -- comments and /* comments */ do not count. Text after
// the last terminator is returned as a final statement. Comments before a statement and blank
// statements are dropped. An unterminated string, quoted identifier or comment is an error.
func SplitDDL(ddl string) ([]string, error) {
	var out []string
	start := -1 // byte offset of the current statement, -1 when between statements
	plsql := false
	lineStart := true
	emit := func(end int) {
		if start >= 0 {
			if s := strings.TrimSpace(ddl[start:end]); s != "" {
				out = append(out, s)
			}
		}
		start, plsql = -1, false
	}
	i := 0
	for i < len(ddl) {
		c := ddl[i]
		// A line holding only "/" ends any statement.
		if lineStart {
			j := i
			for j < len(ddl) && (ddl[j] == ' ' || ddl[j] == '\t') {
				j++
			}
			if j < len(ddl) && ddl[j] == '/' {
				k := j + 1
				for k < len(ddl) && (ddl[k] == ' ' || ddl[k] == '\t' || ddl[k] == '\r') {
					k++
				}
				if k == len(ddl) || ddl[k] == '\n' {
					emit(i)
					i = k
					continue
				}
			}
		}
		lineStart = c == '\n'
		switch {
		case c == '-' && i+1 < len(ddl) && ddl[i+1] == '-':
			j := strings.IndexByte(ddl[i:], '\n')
			if j < 0 {
				i = len(ddl)
			} else {
				i += j // the newline itself is handled next, so lineStart is set
			}
			continue
		case c == '/' && i+1 < len(ddl) && ddl[i+1] == '*':
			j := strings.Index(ddl[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("split ddl: unterminated comment at offset %d", i)
			}
			i += 2 + j + 2
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
			continue
		}
		if start < 0 {
			start = i
			plsql = plsqlStart.MatchString(ddl[i:])
		}
		switch {
		case (c == 'q' || c == 'Q') && i+2 < len(ddl) && ddl[i+1] == '\'' && qStart(ddl, i):
			end, err := skipQQuote(ddl, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '\'':
			end, err := skipQuoted(ddl, i, '\'')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '"':
			end, err := skipQuoted(ddl, i, '"')
			if err != nil {
				return nil, err
			}
			i = end
		case c == ';' && !plsql:
			emit(i)
			i++
		default:
			i++
		}
	}
	emit(len(ddl))
	return out, nil
}

// qStart reports whether the q at i begins a q-quoted literal rather than ending a word:
// q'…' or Nq'…' with no identifier character before.
func qStart(s string, i int) bool {
	if i > 0 && (s[i-1] == 'n' || s[i-1] == 'N') {
		i--
	}
	if i == 0 {
		return true
	}
	p := s[i-1]
	return !(p >= 'A' && p <= 'Z' || p >= 'a' && p <= 'z' || p >= '0' && p <= '9' || p == '_' || p == '$' || p == '#')
}

// skipQuoted returns the offset after the literal or quoted identifier starting at i; a doubled
// quote is an escape.
func skipQuoted(s string, i int, q byte) (int, error) {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("split ddl: unterminated %c at offset %d", q, i)
}

// skipQQuote returns the offset after q'<d>…<d>' starting at i.
func skipQQuote(s string, i int) (int, error) {
	open := s[i+2]
	closing := open
	switch open {
	case '[':
		closing = ']'
	case '{':
		closing = '}'
	case '(':
		closing = ')'
	case '<':
		closing = '>'
	case ' ', '\t', '\n', '\r':
		return 0, fmt.Errorf("split ddl: bad q-quote delimiter at offset %d", i)
	}
	for j := i + 3; j+1 < len(s); j++ {
		if s[j] == closing && s[j+1] == '\'' {
			return j + 2, nil
		}
	}
	return 0, fmt.Errorf("split ddl: unterminated q-quote at offset %d", i)
}
