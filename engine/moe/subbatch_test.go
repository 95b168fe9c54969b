package moe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSplit checks the sub-batch split against its definition, for traces
// and for requests placed in channels in turn: every channel's requests
// split in half, an odd count rounded up and down in turn over the
// channels (first up), the halves adding up to the batch; and the two
// sub-batches' attention adding up to the batch's (scores, KV bytes, MACs
// and PIM writes; halfSel.take and count select every request once).
func TestSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 300; n++ {
		c := config{channels: int64(1 + r.IntN(40)), batch: int64(2 + r.IntN(600)), seqLen: int64(1 + r.IntN(3000)),
			nHeads: 32, nKV: 32, headDim: 128, dModel: 4096, tp: 4, dtype: 2, pim: n%3 != 0}
		c.dev = Device{Array: Systolic{H: 128, W: 128, Issue: 16}, HBM: DefaultHBM(), Dtype: 2}
		c.dev.HBM.Channels = c.channels
		if n%2 == 1 {
			for i := 0; i < 1+r.IntN(300); i++ {
				c.seqTrace = append(c.seqTrace, Request{SeqLen: int32(1 + r.IntN(3000)), Channel: int32(r.IntN(64))})
			}
		}
		per := make([]int64, c.channels) // requests per channel, counted here
		for i := int64(0); i < c.batch; i++ {
			if len(c.seqTrace) == 0 {
				per[i%c.channels]++
			} else {
				per[int64(c.seqTrace[i%int64(len(c.seqTrace))].Channel)%c.channels]++
			}
		}
		quota := make([]int64, c.channels)
		b1, b2 := c.split(quota)
		if b1+b2 != c.batch || b1 < 1 || b2 < 1 {
			t.Fatalf("%d requests split %d + %d", c.batch, b1, b2)
		}
		up := true
		for ch, k := range per {
			want := k / 2
			if k%2 == 1 {
				if up {
					want++
				}
				up = !up
			}
			if quota[ch] != want {
				t.Fatalf("channel %d of %d requests: first half %d, want %d", ch, k, quota[ch], want)
			}
		}
		var whole, halves attnWork
		buf := make([]int64, 3*c.channels)
		c.attention(&whole, buf[:c.channels], buf[c.channels:2*c.channels], nil)
		for i, b := range []int64{b1, b2} {
			h := c
			h.batch = b
			clear(buf[2*c.channels:])
			var w attnWork
			h.attention(&w, buf[:c.channels], buf[c.channels:2*c.channels], &halfSel{total: c.batch, quota: quota, seen: buf[2*c.channels:], second: i == 1})
			halves.scores += w.scores
			halves.kvBytes += w.kvBytes
			halves.macs += w.macs
			halves.writes += w.writes
			halves.rows += w.rows
		}
		if halves.scores != whole.scores || halves.kvBytes != whole.kvBytes || halves.macs != whole.macs ||
			halves.writes != whole.writes || halves.rows != whole.rows {
			t.Fatalf("halves %+v, whole batch %+v", halves, whole)
		}
	}
}

// TestSubBatchStageStretchesVectorOpsBesideAttend checks that sbStage
// tells its array program where NeuPIMSAttend begins (Seq.AttendFrom):
// beside a PIM program that outlasts it, the dense FFN of a half has the
// same ops, op for op, as a replay of the program with that AttendFrom,
// and the same PIM time as all Attend costs it more than as all
// LogitSoftmax (its vector ops stretch by 1 + VectorAttendInterference
// instead of 1 + SAInterference).
func TestSubBatchStageStretchesVectorOpsBesideAttend(t *testing.T) {
	e := New()
	c := e.config(point(t, e, map[string]any{"batch_size": 256, "n_layers": 2}))
	h := sbHalf{c: c}
	h.c.batch = c.batch / 2
	prog := sbProgram{ffn: &h}
	// the array program alone, to size a PIM program that outlasts it
	alone, _ := prog.run(Seq{Dev: c.dev}, &layer{})
	pim := int64(4 * alone.T)
	ffn := func(logit int64) stageE {
		var l layer
		c.sbStage(prog, &attnWork{pimCycles: pim, pimLogit: logit}, 0, &l)
		// the replay: sbStage's PIM program, slowed by the array's traffic
		f := PIMSlowdown(alone.Mem, float64(pim))
		lo, at := math.Round(float64(logit)*f), math.Round(float64(pim-logit)*f)
		var r layer
		prog.run(Seq{Dev: c.dev, PIMEnd: lo + at, AttendFrom: lo}, &r)
		if l.e != r.e {
			t.Fatalf("LogitSoftmax %d of %d PIM cycles: the stage's FFN %+v, its replay %+v", logit, pim, l.e, r.e)
		}
		return l.e
	}
	// Attend from the middle of the array program on
	asLogit, asAttend, mid := ffn(pim), ffn(0), ffn(int64(alone.T/2))
	if asAttend.dense.cycles <= asLogit.dense.cycles || mid.dense.cycles < asLogit.dense.cycles || mid.dense.cycles > asAttend.dense.cycles {
		t.Fatalf("FFN cycles beside all Attend %d, Attend from mid-program %d, all LogitSoftmax %d: want the last below the first, the middle between",
			asAttend.dense.cycles, mid.dense.cycles, asLogit.dense.cycles)
	}
}
