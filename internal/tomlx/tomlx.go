// Package tomlx holds small helpers for TOML values decoded by
// github.com/BurntSushi/toml into Go maps, shared by the study loader and
// the engines that read their own study tables.
package tomlx

import "fmt"

// Describe names the TOML type of a decoded value for error messages:
// "an integer", "a float", "a string", "a boolean", "a list", "a table",
// "an array of tables".
func Describe(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("%T", v)
}
