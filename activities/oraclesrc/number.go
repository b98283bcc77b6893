package oraclesrc

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNumber reports text that is not an Oracle NUMBER value.
var ErrNumber = errors.New("not an oracle number")

// Oracle NUMBER limits: 1E-130 <= |v| < 1E126, at most 20 base-100 mantissa digits (38 decimal
// digits of guaranteed precision, up to 40 when the digits align with base-100 pairs, as in
// 1/3 = .3333333333333333333333333333333333333333).
const (
	numberMinPoint = -129 // 0.1E-129 = 1E-130
	numberMaxPoint = 126  // 0.999…E126 < 1E126
	numberMaxPairs = 20
)

// CanonicalNumber turns Oracle's text for a NUMBER into Bulwark's canonical form, or fails
// with ErrNumber.
//
// Accepted input: an optional sign, digits with an optional point (".5", "5.", "-0.50"), and an
// optional exponent ("1E+30", "1.5e-10"), as TO_CHAR and drivers print them. Rejected: empty
// text, spaces, NaN and infinities ("~", "Inf"; NUMBER has none), other characters, and values
// outside Oracle's range or precision.
//
// Canonical output: "-" for negative values, then the integer digits without leading zeros
// ("0" when there are none), then "." and the fraction digits without trailing zeros when there
// is a fraction. No exponent, ever: go-ora mis-encodes exponent notation on bind. Zero is "0":
// Oracle's NUMBER has no negative zero, so "-0", "-0.0" and "0E5" all become "0".
func CanonicalNumber(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrNumber, truncate(s, 64), why)
	}
	if len(s) == 0 {
		return bad("empty")
	}
	if len(s) > 200 {
		return bad("too long")
	}
	i := 0
	neg := false
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		i++
	}
	var digits []byte
	intDigits := 0
	seenPoint, seenDigit := false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			seenDigit = true
			if !seenPoint {
				intDigits++
			}
		case c == '.' && !seenPoint:
			seenPoint = true
		default:
			goto exponent
		}
	}
exponent:
	if !seenDigit {
		return bad("no digits")
	}
	exp := 0
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return bad(fmt.Sprintf("unexpected %q", s[i]))
		}
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return bad("empty exponent")
		}
		for ; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return bad(fmt.Sprintf("unexpected %q in exponent", c))
			}
			exp = exp*10 + int(c-'0')
			if exp > 1000 {
				return bad("exponent out of range")
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	// value = 0.<digits> × 10^point
	point := intDigits + exp
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
		point--
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		return "0", nil
	}
	if point > numberMaxPoint {
		return bad("magnitude 1E126 or more")
	}
	if point < numberMinPoint {
		return bad("magnitude below 1E-130")
	}
	// Base-100 digits are aligned on the decimal point: the digit of weight 10^k is in pair
	// floor(k/2). The first digit has weight 10^(point-1), the last 10^(point-len).
	pairs := floorDiv(point-1, 2) - floorDiv(point-len(digits), 2) + 1
	if pairs > numberMaxPairs {
		return bad(fmt.Sprintf("%d significant digits exceed oracle precision", len(digits)))
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case point <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.Write(digits)
	case point >= len(digits):
		b.Write(digits)
		b.WriteString(strings.Repeat("0", point-len(digits)))
	default:
		b.Write(digits[:point])
		b.WriteByte('.')
		b.Write(digits[point:])
	}
	return b.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
