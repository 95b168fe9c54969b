package sweep

import (
	"strings"
)

// locate returns the 1-based line of a key in TOML text, best effort: path is
// the table path and key, e.g. ["axes", "top_k"], ["zip", "1", "d_model"]
// (the second [[zip]] table) or ["study"] for a table header. It returns 0
// when the key cannot be found.
func locate(text string, path []string) int {
	if len(path) == 0 {
		return 0
	}
	lines := strings.Split(text, "\n")
	table := ""    // current [table] or [[array]] name
	arrayIdx := -1 // index within the current [[array]]
	arrayCount := map[string]int{}
	wantTable, wantIdx, key := "", -1, ""
	switch {
	case len(path) == 1:
		wantTable = path[0]
	case path[0] == "zip" && len(path) >= 3:
		wantTable, key = "zip", path[2]
		wantIdx = atoi(path[1])
	case path[0] == "zip" && len(path) == 2:
		wantTable = "zip"
		wantIdx = atoi(path[1])
	default:
		wantTable, key = path[0], path[1]
	}
	for i, raw := range lines {
		line := strings.TrimSpace(stripComment(raw))
		if strings.HasPrefix(line, "[[") && strings.HasSuffix(line, "]]") {
			table = strings.TrimSpace(line[2 : len(line)-2])
			arrayIdx = arrayCount[table]
			arrayCount[table]++
			if key == "" && table == wantTable && (wantIdx < 0 || wantIdx == arrayIdx) {
				return i + 1
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			table = strings.TrimSpace(line[1 : len(line)-1])
			arrayIdx = -1
			if key == "" && table == wantTable {
				return i + 1
			}
			continue
		}
		if key == "" || table != wantTable || (wantIdx >= 0 && arrayIdx != wantIdx) {
			// dotted keys at top level: axes.top_k = ...
			if key != "" && table == "" && wantIdx < 0 && keyMatches(line, wantTable+"."+key) {
				return i + 1
			}
			continue
		}
		if keyMatches(line, key) {
			return i + 1
		}
	}
	if len(path) > 1 {
		return locate(text, path[:1])
	}
	return 0
}

func keyMatches(line, key string) bool {
	for _, k := range []string{key, `"` + key + `"`, `'` + key + `'`} {
		if strings.HasPrefix(line, k) {
			rest := strings.TrimSpace(line[len(k):])
			if strings.HasPrefix(rest, "=") {
				return true
			}
		}
	}
	return false
}

// stripComment removes a # comment that is not inside a string.
func stripComment(s string) string {
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0:
			if c == '\\' && inStr == '"' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'':
			inStr = c
		case c == '#':
			return s[:i]
		}
	}
	return s
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
