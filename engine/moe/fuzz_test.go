package moe

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sweep-dse/sweep/engine"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func isFileError(err error) bool {
	var fe *engine.FileError
	return errors.As(err, &fe)
}

// FuzzNeuPIMsJSON feeds arbitrary bytes to the model, NPU and memory config
// loaders: a value map or a *engine.FileError, never a panic.
func FuzzNeuPIMsJSON(f *testing.F) {
	for _, g := range []string{"testdata/neupims/model_configs/*.json", "testdata/neupims/memory_configs/*.json", "testdata/neupims/*.json", "testdata/*.json"} {
		files, _ := filepath.Glob(g)
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := writeTemp(t, "c.json", data)
		for _, load := range []func(string) (map[string]engine.Value, error){LoadModelConfig, LoadNPUConfig, LoadMemConfig} {
			if _, err := load(p); err != nil && !isFileError(err) {
				t.Fatalf("error %T: %v", err, err)
			}
		}
	})
}

// FuzzTraces feeds arbitrary bytes to the request and routing trace
// loaders.
func FuzzTraces(f *testing.F) {
	f.Add([]byte("seq_len,ch_idx\n2048,26\n1004,6\n"))
	f.Add([]byte("layer_id,token_id,expert_0,expert_1\n0,0,0.9,0.1\n0,1,0.2,0.8\n1,0,0.5,0.5\n"))
	f.Add([]byte("seq_len,ch_idx\n-1,2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := writeTemp(t, "t.csv", data)
		if reqs, err := LoadSeqTrace(p); err != nil {
			if !isFileError(err) {
				t.Fatalf("error %T: %v", err, err)
			}
		} else {
			for _, r := range reqs {
				if r.SeqLen < 1 || r.Channel < 0 {
					t.Fatalf("bad request %+v accepted", r)
				}
			}
		}
		if rt, err := LoadRoutingTrace(p); err != nil {
			if !isFileError(err) {
				t.Fatalf("error %T: %v", err, err)
			}
		} else {
			for _, rows := range rt.Layers {
				if len(rows) == 0 {
					t.Fatal("a layer without rows")
				}
				for _, row := range rows {
					for _, x := range row[:rt.K] {
						if int(x) >= rt.Experts {
							t.Fatalf("expert %d of %d", x, rt.Experts)
						}
					}
				}
			}
		}
	})
}

// FuzzHFConfig feeds arbitrary bytes to the Hugging Face config.json import
// (through CountConfig, which also counts the model): counts or a
// *engine.FileError / *engine.ParamError, never a panic.
func FuzzHFConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/hf/*.json")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := writeTemp(t, "config.json", data)
		c, err := CountConfig(p)
		if err != nil {
			var pe *engine.ParamError
			if !isFileError(err) && !errors.As(err, &pe) {
				t.Fatalf("error %T: %v", err, err)
			}
			return
		}
		if c.Total < 0 || c.Active < 0 || c.Active > c.Total {
			t.Fatalf("counts %+v", c)
		}
	})
}
