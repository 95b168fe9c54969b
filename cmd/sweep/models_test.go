package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweep-dse/sweep/dataset"
	"github.com/sweep-dse/sweep/engine"
	"github.com/sweep-dse/sweep/engine/moe"
	"github.com/sweep-dse/sweep/sweep"
)

func TestModelsList(t *testing.T) {
	var b bytes.Buffer
	if err := models(&b, modelsOptions{Format: "text"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, n := range moe.ModelPresetNames() {
		if !strings.Contains(out, "\n  "+n+" ") {
			t.Errorf("list lacks %s:\n%s", n, out)
		}
	}
	if !strings.Contains(out, "46.70B") || !strings.Contains(out, "46.7B total") {
		t.Errorf("mixtral-8x7b line lacks its counts:\n%s", out)
	}
}

func TestModelsJSON(t *testing.T) {
	var b bytes.Buffer
	if err := models(&b, modelsOptions{Format: "json"}); err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	if err := json.Unmarshal(b.Bytes(), &all); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	if len(all) != len(moe.ModelPresetNames()) {
		t.Fatalf("%d objects, want %d", len(all), len(moe.ModelPresetNames()))
	}
	for _, o := range all {
		for _, k := range []string{"name", "total_params", "active_params", "active_params_no_input_embedding", "non_embedding_params"} {
			if _, ok := o[k]; !ok {
				t.Errorf("%v lacks %s", o["name"], k)
			}
		}
	}
	b.Reset()
	if err := models(&b, modelsOptions{Name: "olmoe-1b-7b", Format: "json"}); err != nil {
		t.Fatal(err)
	}
	var one modelJSON
	if err := json.Unmarshal(b.Bytes(), &one); err != nil {
		t.Fatal(err)
	}
	m, _ := moe.CountPreset("olmoe-1b-7b")
	if one.Name != "olmoe-1b-7b" || one.TotalParams != m.Total || one.ActiveParams != m.Active ||
		one.ActiveNoInputEmbedding != m.ActiveNoInputEmbedding || one.NonEmbeddingParams != m.NonEmbedding {
		t.Errorf("json %+v, counts %+v", one, m)
	}
	if one.TotalParams != one.EmbeddingParams+one.LMHeadParams+one.FinalNormParams+
		one.MoELayers*one.PerLayer.MoELayer+one.DenseLayers*one.PerLayer.DenseLayer {
		t.Errorf("per-layer breakdown does not add up to the total: %+v", one)
	}
	if one.Published == nil || one.Published.Total != 6.9e9 {
		t.Errorf("published figures: %+v", one.Published)
	}
}

func TestModelsConfigFiles(t *testing.T) {
	// a Hugging Face config.json (detected by model_type) ...
	hf := filepath.Join("..", "..", "engine", "moe", "testdata", "hf", "deepseek-v2-lite.json")
	var b bytes.Buffer
	if err := runModels(context.Background(), &b, io.Discard, []string{"--config", hf, "--format", "json"}); err != nil {
		t.Fatal(err)
	}
	var one modelJSON
	if err := json.Unmarshal(b.Bytes(), &one); err != nil {
		t.Fatal(err)
	}
	want, _ := moe.CountPreset("deepseek-v2-lite")
	if one.TotalParams != want.Total || one.Architecture.Attention != "mla" || one.DenseLayers != 1 {
		t.Errorf("config.json: %+v", one)
	}
	// ... and a NeuPIMs model config
	np := filepath.Join("..", "..", "engine", "moe", "testdata", "neupims", "model_configs", "gpt3-7B.json")
	b.Reset()
	if err := runModels(context.Background(), &b, io.Discard, []string{"--config", np}); err != nil {
		t.Fatal(err)
	}
	// NeuPIMs ships one layer: 12·d² + 2·V·d weights
	if !strings.Contains(b.String(), group(12*4096*4096+2*50304*4096)) {
		t.Errorf("NeuPIMs gpt3-7B counts:\n%s", b.String())
	}
}

func TestModelsErrors(t *testing.T) {
	dir := t.TempDir()
	llama := filepath.Join(dir, "config.json")
	if err := os.WriteFile(llama, []byte("{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 4096\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"gpt5"}, `unknown model preset "gpt5"`, true},
		{[]string{"a", "b"}, "at most one model name", true},
		{[]string{"dbrx", "--config", llama}, "not both", true},
		{[]string{"--format", "yaml"}, `--format "yaml"`, true},
		{[]string{"--config", llama}, `config.json:2: model_type "llama" is not supported; supported: dbrx, deepseek_v2`, false},
	} {
		err := runModels(context.Background(), io.Discard, io.Discard, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
			continue
		}
		var ue *UsageError
		var fe *engine.FileError
		if tc.usage && !errors.As(err, &ue) || !tc.usage && !errors.As(err, &fe) {
			t.Errorf("%v: error type %T", tc.args, err)
		}
		if code := exitCode(err, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
	}
}

// TestRealMoEStudy runs studies/real-moe.toml (presets × batch sizes ×
// hardware × resident experts) end to end into a temporary dataset and checks
// every row: status ok, the model's parameter count, a positive throughput.
func TestRealMoEStudy(t *testing.T) {
	s, err := sweep.Load(filepath.Join("..", "..", "studies", "real-moe.toml"))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := sweep.Run(context.Background(), s, sweep.RunOptions{Out: out, Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.OK != res.Plan.Points || res.OK != 12*5*2*2 {
		t.Fatalf("ran %d ok, %d failed of %d points", res.OK, res.Failed, res.Plan.Points)
	}
	parts, err := dataset.Parts(out)
	if err != nil {
		t.Fatal(err)
	}
	perModel := map[string]int{}
	for _, p := range parts {
		err := dataset.Scan(context.Background(), p, []string{"model", "params_total", dataset.ColStatus, "tokens_per_s"}, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				name := rec.Column(0).(*array.String).Value(i)
				m, err := moe.CountPreset(name)
				if err != nil {
					return err
				}
				if got := rec.Column(1).(*array.Int64).Value(i); got != m.Total {
					t.Errorf("%s: params_total %d, want %d", name, got, m.Total)
				}
				if st := rec.Column(2).(*array.String).Value(i); st != dataset.StatusOK {
					t.Errorf("%s: status %s", name, st)
				}
				if tps := rec.Column(3).(*array.Float64).Value(i); !(tps > 0) {
					t.Errorf("%s: tokens_per_s %v", name, tps)
				}
				perModel[name]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(perModel) != 12 {
		t.Errorf("rows for %d models, want 12: %v", len(perModel), perModel)
	}
	for name, n := range perModel {
		if n != 20 {
			t.Errorf("%s: %d rows, want 20", name, n)
		}
	}
}

// TestStudyWithHFConfig: a study names a Hugging Face config.json by
// model_config (relative to the study file) and sweeps batch sizes.
func TestStudyWithHFConfig(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "engine", "moe", "testdata", "hf", "mixtral-8x7b.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "models", "config.json"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	study := filepath.Join(dir, "hf.toml")
	text := "[study]\nname = \"hf\"\n[base]\nmodel_config = \"models/config.json\"\n[axes]\nbatch_size = [1, 64]\n"
	if err := os.WriteFile(study, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sweep.Load(study)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sweep.Run(context.Background(), s, sweep.RunOptions{Out: filepath.Join(dir, "out"), Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 2 || res.Failed != 0 {
		t.Fatalf("ran %d ok, %d failed", res.OK, res.Failed)
	}
	parts, _ := dataset.Parts(filepath.Join(dir, "out"))
	want, _ := moe.CountPreset("mixtral-8x7b")
	for _, p := range parts {
		err := dataset.Scan(context.Background(), p, []string{"params_total"}, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				if got := rec.Column(0).(*array.Int64).Value(i); got != want.Total {
					t.Errorf("params_total %d, want %d", got, want.Total)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubBatchStudy runs studies/sub-batch.toml end to end and checks the
// two mechanisms it shows: when each half of the batch fills whole
// 128-row array tiles, interleaving hides PIM attention behind the array
// and the dense model decodes faster; when a half is less than one tile
// (which costs a full one) the array's time doubles, and with short KV
// caches sub-batch mode is slower for every model.
func TestSubBatchStudy(t *testing.T) {
	s, err := sweep.Load(filepath.Join("..", "..", "studies", "sub-batch.toml"))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := sweep.Run(context.Background(), s, sweep.RunOptions{Out: out, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.OK != 2*3*4*2 {
		t.Fatalf("ran %d ok, %d failed of %d points", res.OK, res.Failed, res.Plan.Points)
	}
	parts, err := dataset.Parts(out)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ experts, batch, seq int64 }
	lat := map[key][2]float64{} // [without, with] sub-batch
	for _, p := range parts {
		err := dataset.Scan(context.Background(), p, []string{"sub_batch", "num_experts", "batch_size", "seq_len", "latency_s"}, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				k := key{rec.Column(1).(*array.Int64).Value(i), rec.Column(2).(*array.Int64).Value(i), rec.Column(3).(*array.Int64).Value(i)}
				v := lat[k]
				v[b2i(rec.Column(0).(*array.Boolean).Value(i))] = rec.Column(4).(*array.Float64).Value(i)
				lat[k] = v
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range lat {
		speedup := v[0] / v[1]
		t.Logf("%+v: without %.6f s, with %.6f s, speedup %.3f", k, v[0], v[1], speedup)
		switch {
		case v[0] <= 0 || v[1] <= 0:
			t.Errorf("%+v: latencies %v", k, v)
		case k.experts == 0 && k.batch >= 256 && speedup <= 1:
			// each half fills whole 128-row tiles: the array's time is the
			// same, and PIM attention hides behind it
			t.Errorf("dense %+v: sub-batch speedup %.3f, want > 1", k, speedup)
		case k.batch <= 128 && k.seq == 512 && speedup >= 1:
			// a half is less than one 128-row tile, which costs as much as
			// a full one: the array's time doubles and short attention
			// hides little of it
			t.Errorf("%+v: sub-batch speedup %.3f, want < 1", k, speedup)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
