package moe

import "math"

// Sub-batch mode (sub_batch = true, with pim): NeuPIMs' interleaving of the
// systolic array and the PIM units. The batch splits in two sub-batches,
// per channel (halfSel), and while PIM runs one sub-batch's attention the
// array runs the other's projections and FFN. The stages of an iteration
// of L layers, with the halves 1 and 2 and "∥" for what runs beside the
// array program on PIM:
//
//	A  QKV#1
//	B  QKV#2               ∥ MHA#1
//	C  FFN#1(ℓ) + QKV#1(ℓ+1) ∥ MHA#2(ℓ)    } L − 1 times, for ℓ = 0 … L−2
//	D  FFN#2(ℓ) + QKV#2(ℓ+1) ∥ MHA#1(ℓ+1)  }
//	E  FFN#1               ∥ MHA#2
//	F  FFN#2
//
// (QKV = input norm and QKV projection; FFN = output projection, residual,
// norm, dense or MoE FFN, residual; MHA = PIM attention.) A stage lasts as
// long as the longer of its two programs. While both run, the PIM program
// slows by PIMSlowdown of the array's memory-bound time, and the array's
// memory-bound ops stretch by PIMStretched until the PIM program ends; the
// array's write backlog passes to the next stage, less what the bus drains
// while the array waits. These are the rules of the NeuPIMs front end
// (neupimsio, checked against NeuPIMs' sub-batch runs in docs/fidelity.md),
// which runs A–F once (NeuPIMs' one-layer sub-batch run is the L = 2 case).
// The front end's GWRITE collisions, an artefact of NeuPIMs' address
// counter, are not modelled here.
//
// Each sub-batch draws its own routing sample of its tokens. Every weight
// in HBM is read once per sub-batch: sub-batch mode trades weight traffic
// for overlap, which a sweep over batch sizes shows. Experts loaded over the
// host link stay on the device for the second sub-batch (subBatchIteration).

// halfSel selects one of the two sub-batches: in every channel the first
// quota[ch] of its requests in trace order (the first sub-batch), or the
// others (second).
type halfSel struct {
	total  int64   // requests of the whole batch
	quota  []int64 // per channel: requests of the first sub-batch
	seen   []int64 // per channel: requests passed so far (take)
	second bool
}

// count is how many of the n requests of channel ch the sub-batch holds.
func (h *halfSel) count(ch, n int64) int64 {
	if h.second {
		return n - h.quota[ch]
	}
	return h.quota[ch]
}

// take reports whether the next request of channel ch is the sub-batch's.
func (h *halfSel) take(ch int64) bool {
	k := h.seen[ch]
	h.seen[ch]++
	return (k < h.quota[ch]) != h.second
}

// split fills quota with the first sub-batch's requests per channel, as
// NeuPIMs splits: half of each channel's requests, an odd count rounded up
// and down in turn over the channels, and returns the two sub-batch sizes.
func (c *config) split(quota []int64) (b1, b2 int64) {
	clear(quota)
	if len(c.seqTrace) == 0 {
		full, extra := c.batch/c.channels, c.batch%c.channels
		for ch := range quota {
			quota[ch] = full + b2i(int64(ch) < extra)
		}
	} else {
		row := 0
		for r := int64(0); r < c.batch; r++ {
			ch := int64(c.seqTrace[row].Channel) % c.channels
			quota[ch]++
			if row++; row == len(c.seqTrace) {
				row = 0
			}
		}
	}
	up := true
	for ch, n := range quota {
		q := n / 2
		if n%2 == 1 {
			if up {
				q = (n + 1) / 2
			}
			up = !up
		}
		quota[ch] = q
		b1 += q
	}
	return b1, c.batch - b1
}

// sbHalf is one sub-batch: the config with its size as the batch, its
// attention and its routing.
type sbHalf struct {
	c     config
	attn  attnWork // attention over the whole KV cache
	attnS attnWork // over the sliding window (sliding-window layers)
	rt    routing
}

// attnOf is the half's attention in a layer with (slides) or without a
// sliding window.
func (h *sbHalf) attnOf(slides bool) *attnWork {
	if slides {
		return &h.attnS
	}
	return &h.attn
}

// sbProgram is the array program of a stage: the FFN of one sub-batch
// (ffn; moe for a MoE layer's), then the QKV of one (qkv); nil parts are
// left out.
type sbProgram struct {
	ffn *sbHalf
	moe bool
	qkv *sbHalf
}

// run adds the program's ops to l on the sequence s and returns the
// sequence after them and the cycles spent outside it (exposed expert
// loads).
func (p sbProgram) run(s Seq, l *layer) (Seq, int64) {
	var extra int64
	if p.ffn != nil {
		s, extra = p.ffn.ffn(s, l, p.moe)
	}
	if p.qkv != nil {
		s, _ = p.qkv.qkv(s, l)
	}
	return s, extra
}

// empty reports whether the program has no ops.
func (p sbProgram) empty() bool { return p.ffn == nil && p.qkv == nil }

// qkv is the sub-batch's input norm and QKV projection.
func (h *sbHalf) qkv(s Seq, l *layer) (Seq, int64) {
	h.c.seq = s
	h.c.layerNorm(&l.qkv, h.c.batch, h.c.dModel)
	h.c.qkvProjection(&l.qkv)
	return h.c.seq, 0
}

// ffn is the rest of a layer for the sub-batch: a MoE layer's (moe) or a
// dense layer's.
func (h *sbHalf) ffn(s Seq, l *layer, moe bool) (Seq, int64) {
	c := h.c
	dense := int64(1)
	if moe {
		dense = 0
	} else {
		c.E = 0
	}
	c.seq = s
	var u layer // stageEOn starts its layer afresh
	c.stageEOn(&u, &h.rt, dense)
	addLayer(l, &u, 1)
	return c.seq, u.e.exposed
}

// sbStage runs one stage: prog on the array beside a PIM program of
// logit + attend cycles, from the write backlog carry. It adds the array's
// ops and the PIM work to l and returns the stage's cycles and the backlog
// it leaves:
//
//	pim   = round(logit·f) + round(attend·f), f = PIMSlowdown(array mem, logit + attend)
//	array = the ops of prog, stretched until pim ends (Seq.PIMEnd)
//	stage = max(array, pim); left = max(0, backlog − (stage − array)·peak_bw)
func (c *config) sbStage(prog sbProgram, w *attnWork, carry float64, l *layer) (cycles int64, left float64) {
	before := l.hbmBytes()
	pimT, attendFrom := 0.0, 0.0
	if w != nil && w.pimCycles > 0 {
		logit, attend := float64(w.pimLogit), float64(w.pimCycles-w.pimLogit)
		if !prog.empty() {
			var scratch layer
			s, _ := prog.run(Seq{Dev: c.dev, Backlog: carry}, &scratch)
			f := PIMSlowdown(s.Mem, logit+attend)
			logit, attend = math.Round(logit*f), math.Round(attend*f)
		}
		pimT, attendFrom = logit+attend, logit
		l.attn.cycles += int64(pimT)
		l.attn.flops += 2 * w.macs
		l.attn.pimBytes += w.kvBytes
		l.attn.hbmBytes += w.writes
	}
	var saEnd float64
	backlog := carry
	if !prog.empty() {
		s, extra := prog.run(Seq{Dev: c.dev, Backlog: carry, PIMEnd: pimT, AttendFrom: attendFrom}, l)
		saEnd, backlog = s.T+float64(extra), s.Backlog
	}
	end := max(saEnd, pimT)
	peak := c.dev.HBM.PeakBytesPerCycle()
	// the bus carries the stage's bytes (the array's, the PIM units'
	// output, the backlog it found, less the one it leaves) at no more
	// than its peak, however the two programs overlap; when that is what
	// the stage lasts, the bus was busy throughout and drained nothing more
	if bus := (carry + float64(l.hbmBytes()-before) - backlog) / peak; bus > end {
		return int64(math.Ceil(bus)), backlog
	}
	left = max(0, backlog-(end-saEnd)*peak)
	return int64(math.Ceil(end)), left
}

// sbResult is a sub-batch iteration: its cycles, the steady-state cycles of
// a layer (C + D), and the work of every op summed over the stages.
type sbResult struct {
	total, layer int64
	work         layer
}

// addLayer adds n times the work of u to t.
func addLayer(t, u *layer, n int64) {
	t.qkv.add(&u.qkv, n)
	t.attn.add(&u.attn, n)
	e, f := &t.e, &u.e
	for _, p := range [][2]*tally{{&e.proj, &f.proj}, {&e.dense, &f.dense}, {&e.resDense, &f.resDense},
		{&e.router, &f.router}, {&e.experts, &f.experts}, {&e.shared, &f.shared}, {&e.resMoE, &f.resMoE}} {
		p[0].add(p[1], n)
	}
	e.exposed += n * f.exposed
}

// subBatchIteration times the iteration in sub-batch mode (the stages
// above) into r. whole is the routing of the whole batch: the experts it
// loads over the link per layer are loaded once and stay on the device for
// both sub-batches, the first loading those its own tokens need and the
// second the rest.
func (c *config) subBatchIteration(r *sbResult, whole *routing) {
	var buf [4 * maxChannels]int64 // only here: a sub-batch-free evaluation does not clear it
	nch := c.channels
	chans := buf[:4*nch]
	quota, seen := chans[:nch], chans[nch:2*nch]
	logit, attend := chans[2*nch:3*nch], chans[3*nch:4*nch]
	b1, b2 := c.split(quota)
	var hs [2]sbHalf
	for i, b := range []int64{b1, b2} {
		h := &hs[i]
		h.c = *c
		h.c.batch = b
		if i == 1 {
			h.c.tokenBase = b1 // the second half's tokens route on their own
		}
		clear(seen)
		h.c.attention(&h.attn, logit, attend, &halfSel{total: c.batch, quota: quota, seen: seen, second: i == 1})
		if c.slidingLayers > 0 {
			clear(seen)
			h.c.attentionOver(&h.attnS, logit, attend, &halfSel{total: c.batch, quota: quota, seen: seen, second: i == 1}, c.window)
		}
		if c.E > 0 {
			var scratch [maxExperts]int32
			h.rt = h.c.route(scratch[:])
		}
	}
	h1, h2 := &hs[0], &hs[1]
	h1.rt.sum.loaded = min(h1.rt.sum.loaded, whole.sum.loaded)
	h2.rt.sum.loaded = whole.sum.loaded - h1.rt.sum.loaded
	// Stage C of layer ℓ runs the second half's attention of layer ℓ, D the
	// first half's of layer ℓ+1. A kind of layer ℓ < L−1 is whether it is a
	// MoE layer (moeAt), and whether the attention beside its C and its D
	// slides (slidingAt ℓ, ℓ+1): kind = moe·4 + slidingC·2 + slidingD.
	L := c.nLayers
	kindOf := func(l int64) int {
		return int(b2i(c.moeAt(l))<<2 | b2i(c.slidingAt(l))<<1 | b2i(c.slidingAt(l+1)))
	}
	var counts [8]int64
	for l := int64(0); l < L-1; l++ {
		counts[kindOf(l)]++
	}
	lastMoE := c.moeAt(L - 1)
	prevKind := -1 // layer L−2's
	if L >= 2 {
		prevKind = kindOf(L - 2)
	}

	var w layer
	a, carry := c.sbStage(sbProgram{qkv: h1}, nil, 0, &w)
	b, carry := c.sbStage(sbProgram{qkv: h2}, h1.attnOf(c.slidingAt(0)), carry, &w)
	total := a + b
	// C and D of each kind of layer ℓ < L−1, all from the backlog B left;
	// E starts from what the D of layer L−2 leaves. cycles_layer is C + D
	// of a layer of the last layer's FFN kind (the mean over its kinds).
	carryE := carry
	cd := func(moe, slidesC, slidesD bool, u *layer) (cycles int64, left float64) {
		cc, left := c.sbStage(sbProgram{ffn: h1, moe: moe, qkv: h1}, h2.attnOf(slidesC), carry, u)
		dd, left := c.sbStage(sbProgram{ffn: h2, moe: moe, qkv: h2}, h1.attnOf(slidesD), left, u)
		return cc + dd, left
	}
	var layerSum, layerN int64
	for k, n := range counts {
		if n == 0 {
			continue
		}
		moe := k&4 != 0
		var u layer
		cycles, left := cd(moe, k&2 != 0, k&1 != 0, &u)
		addLayer(&w, &u, n)
		total += n * cycles
		if moe == lastMoE {
			layerSum += n * cycles
			layerN += n
		}
		if k == prevKind {
			carryE = left
		}
	}
	if layerN == 0 { // no earlier layer of the last one's kind
		var u layer
		s := c.slidingAt(L - 1)
		layerSum, _ = cd(lastMoE, s, s, &u)
		layerN = 1
	}
	layerCD := (layerSum + layerN/2) / layerN
	e, carry := c.sbStage(sbProgram{ffn: h1, moe: lastMoE}, h2.attnOf(c.slidingAt(L-1)), carryE, &w)
	f, _ := c.sbStage(sbProgram{ffn: h2, moe: lastMoE}, nil, carry, &w)
	total += e + f
	*r = sbResult{total: total, layer: layerCD, work: w}
}
