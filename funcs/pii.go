package funcs

import "regexp"

// redact_pii_best_effort masks what looks like personal data: e-mail
// addresses, IPv4 and IPv6 addresses, MAC addresses, credit-card numbers
// (13–19 digits, spaces or dashes allowed, Luhn-checked), IMEIs (15
// digits, Luhn-checked) and US social security numbers. It is best effort:
// it neither finds everything nor only personal data.

func init() {
	register("redact_pii_best_effort", "s with e-mails, IPs, MACs, card numbers, IMEIs and SSNs replaced by <REDACTED_…>",
		sig(tS, fn1(rStr, tS, redactPII), tS))
}

var piiRules = []struct {
	re    *regexp.Regexp
	token string
	luhn  bool
}{
	{regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`), "<REDACTED_EMAIL>", false},
	{regexp.MustCompile(`\b(?:[0-9A-Fa-f]{2}[:\-]){5}[0-9A-Fa-f]{2}\b`), "<REDACTED_MAC_ADDR>", false},
	{regexp.MustCompile(`(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,7}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?\b|::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4}\b`), "<REDACTED_IPV6>", false},
	{regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`), "<REDACTED_IPV4>", false},
	{regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`), "<REDACTED_SSN>", false},
	{regexp.MustCompile(`\b(?:\d[ \-]?){12,18}\d\b`), "<REDACTED_CC_NUMBER>", true},
}

func redactPII(s string) string {
	if s == "" {
		return s
	}
	for _, r := range piiRules {
		if r.luhn {
			s = r.re.ReplaceAllStringFunc(s, func(m string) string {
				if luhnValid(m) {
					if digits(m) == 15 && isIMEI(m) {
						return "<REDACTED_IMEI>"
					}
					return r.token
				}
				return m
			})
			continue
		}
		s = r.re.ReplaceAllString(s, r.token)
	}
	return s
}

func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}

// isIMEI reports a 15-digit number with no separators.
func isIMEI(s string) bool { return len(s) == 15 }

func luhnValid(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 13 && sum%10 == 0
}
