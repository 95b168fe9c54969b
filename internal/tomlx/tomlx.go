// Package tomlx holds small helpers for TOML values decoded by
// github.com/BurntSushi/toml into Go maps, shared by the study loader and
// the engines that read their own study tables: type names for errors and
// conversion to engine values.
package tomlx

import (
	"fmt"
	"math"

	"github.com/sweep-dse/sweep/engine"
)

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

// Value converts a decoded TOML value to an engine value of kind k: an
// integer (a float with an integral value is accepted), a finite number (an
// integer widens), a string or a boolean. Errors say what was wanted and
// what was found.
func Value(k engine.Kind, v any) (engine.Value, error) {
	switch k {
	case engine.Int:
		switch x := v.(type) {
		case int64:
			return engine.IntV(x), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return engine.IntV(int64(x)), nil
			}
		}
		return engine.Value{}, fmt.Errorf("want an integer, got %s %v", Describe(v), v)
	case engine.Float:
		switch x := v.(type) {
		case int64:
			return engine.FloatV(float64(x)), nil
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return engine.Value{}, fmt.Errorf("want a finite number, got %v", x)
			}
			return engine.FloatV(x), nil
		}
		return engine.Value{}, fmt.Errorf("want a number, got %s %v", Describe(v), v)
	case engine.Bool:
		if x, ok := v.(bool); ok {
			return engine.BoolV(x), nil
		}
		return engine.Value{}, fmt.Errorf("want true or false, got %s %v", Describe(v), v)
	case engine.String:
		if x, ok := v.(string); ok {
			return engine.StringV(x), nil
		}
		return engine.Value{}, fmt.Errorf("want a string, got %s %v", Describe(v), v)
	}
	return engine.Value{}, fmt.Errorf("unsupported kind %v", k)
}
