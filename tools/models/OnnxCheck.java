// Checks an exported ONNX decoder (HF Optimum layout with KV cache, or the "slots" layout, recognised
// by its metadata tandem.kv_layout=slots) with ONNX Runtime Java against reference data written by
// export_onnx.py, and measures held-out perplexity.
//
//   java -cp onnxruntime-1.29.0.jar --enable-native-access=ALL-UNNAMED tools/models/OnnxCheck.java \
//        --ref ref.bin --heldout heldout.bin [--heldout-extra NAME=docs.bin ...] [--json out.json] \
//        [--prompts p.bin [--max-new 60]] \
//        model_fp32.onnx:1e-4 model.onnx ...
//
// A model given as path:TOL fails (exit 1) if any logit differs from the reference by more than TOL
// or if its greedy continuation differs. Checks per model:
//   prefill  : whole reference sequence in one call (past length 0)
//   cached   : prefill half, then 5 tokens at once after the past, then one token at a time
//   batch    : batch 2, row 1 left-padded by 3 (attention_mask 0, position_ids from 0 at the first
//              real token), prefill then 2 tokens at once after the past for both rows
//   greedy   : greedy continuation of the reference prompt with the KV cache, compared to torch's
//   ppl      : per held-out verse <s> verse </s>, exp(mean NLL of predicting verse </s>); --heldout-extra: the
//              same for another document set (second edition: passages), JSON heldout_NAME_ppl / _tokens
//   slots graphs, in place of "batch": batch invariance: 3 rows of different lengths feeding different
//              numbers of real tokens (padded), cache width 64 more than alone, unused slots random;
//              each row's logits must be bit-identical to the row's alone (a model without TOL fails if not)
//              and by placement: rows alone (batch 1, mostly 1 token) vs at each batch index of 3-row batches
//              with T = 1..11 (padded), at positions 1..~130 (catches per-element kernel differences, e.g. Cos)
//   --prompts: greedy continuations of the prompts in p.bin (int32 count, then int32 length + int64 ids
//              each), which must be the same for every model (e.g. a re-export against the shipped graph);
//              also each later model's logits along the first model's continuations (teacher-forced, one call per
//              prompt): max abs diff to the first model's and how often its argmax is the first model's token
//   --greedy-differ-ok: --prompts continuations may differ from the first model's (a draft re-exported in
//              another layout: its proposals need not be the shipped graph's); the agreement is reported
import ai.onnxruntime.*;

import java.io.*;
import java.nio.*;
import java.nio.file.*;
import java.util.*;

public class OnnxCheck {
    static OrtEnvironment env = OrtEnvironment.getEnvironment();
    static OrtSession sess;
    static int layers, kvh, hd, vocab;

    static final class Out {
        float[] logits; // [b, s, V]
        float[][] present; // [2*layers][b*kvh*total*hd]
        int b, s, total;
    }

    static Out run(long[][] ids, long[][] mask, long[][] pos, float[][] past, int pastLen) throws OrtException {
        int b = ids.length, s = ids[0].length, total = pastLen + s;
        Map<String, OnnxTensor> in = new LinkedHashMap<>();
        List<OnnxTensor> all = new ArrayList<>();
        try {
            in.put("input_ids", t(flat(ids), b, s));
            in.put("attention_mask", t(flat(mask), b, total));
            in.put("position_ids", t(flat(pos), b, s));
            for (int i = 0; i < layers; i++) {
                for (int j = 0; j < 2; j++) {
                    float[] p = past == null ? new float[0] : past[2 * i + j];
                    in.put("past_key_values." + i + (j == 0 ? ".key" : ".value"),
                            OnnxTensor.createTensor(env, FloatBuffer.wrap(p), new long[]{b, kvh, pastLen, hd}));
                }
            }
            all.addAll(in.values());
            try (OrtSession.Result r = sess.run(in)) {
                Out o = new Out();
                o.b = b; o.s = s; o.total = total;
                o.logits = arr(((OnnxTensor) r.get("logits").get()).getFloatBuffer());
                o.present = new float[2 * layers][];
                for (int i = 0; i < layers; i++) {
                    o.present[2 * i] = arr(((OnnxTensor) r.get("present." + i + ".key").get()).getFloatBuffer());
                    o.present[2 * i + 1] = arr(((OnnxTensor) r.get("present." + i + ".value").get()).getFloatBuffer());
                }
                return o;
            }
        } finally {
            for (OnnxTensor x : all) x.close();
        }
    }

    static OnnxTensor t(long[] v, int b, int s) throws OrtException {
        return OnnxTensor.createTensor(env, LongBuffer.wrap(v), new long[]{b, s});
    }

    static float[] arr(FloatBuffer fb) {
        float[] a = new float[fb.remaining()];
        fb.get(a);
        return a;
    }

    static long[] flat(long[][] x) {
        long[] r = new long[x.length * x[0].length];
        for (int i = 0; i < x.length; i++) System.arraycopy(x[i], 0, r, i * x[0].length, x[0].length);
        return r;
    }

    static long[][] one(long[] v) { return new long[][]{v}; }

    static long[] range(long a, int n) {
        long[] r = new long[n];
        for (int i = 0; i < n; i++) r[i] = a + i;
        return r;
    }

    static long[] ones(int n) { long[] r = new long[n]; Arrays.fill(r, 1); return r; }

    static long[] slice(long[] v, int a, int b) { return Arrays.copyOfRange(v, a, b); }

    /** max |logits[row, i] - ref[refStart + i]| over i < n */
    static double diff(Out o, int row, int from, float[] ref, int refStart, int n) {
        double m = 0;
        for (int i = 0; i < n; i++) {
            int ob = (row * o.s + from + i) * vocab, rb = (refStart + i) * vocab;
            for (int k = 0; k < vocab; k++) m = Math.max(m, Math.abs(o.logits[ob + k] - ref[rb + k]));
        }
        return m;
    }

    static int argmax(float[] l, int off) {
        int best = 0;
        for (int k = 1; k < vocab; k++) if (l[off + k] > l[off + best]) best = k;
        return best;
    }

    static ByteBuffer readAll(String p) throws IOException {
        return ByteBuffer.wrap(Files.readAllBytes(Path.of(p))).order(ByteOrder.LITTLE_ENDIAN);
    }

    static long[] longs(ByteBuffer bb, int n) { long[] r = new long[n]; for (int i = 0; i < n; i++) r[i] = bb.getLong(); return r; }

    /** The numbers measured for one model (the same fields for both layouts). */
    record Result(double prefill, double cached, double batch, double steps, double batchInvariance, int agree,
                  boolean greedyOk, double prefillNanos, double msPerTok, double ppl, long pplTokens, double pplSec) {}
    /** The Optimum layout (past grows by concatenation, attention_mask). */
    static Result optimumChecks(long[] seq, float[] ref, long[] prompt, long[] gen, List<long[]> docs) throws OrtException {
        int L = seq.length;
        // prefill
        Out o = run(one(seq), one(ones(L)), one(range(0, L)), null, 0);
        double dPrefill = diff(o, 0, 0, ref, 0, L);
        // cached: half, then 5 at once, then 1 at a time
        int h = L / 2;
        Out a = run(one(slice(seq, 0, h)), one(ones(h)), one(range(0, h)), null, 0);
        double dCached = diff(a, 0, 0, ref, 0, h);
        int p = h;
        float[][] past = a.present;
        while (p < L) {
            int k = p == h ? Math.min(5, L - p) : 1;
            Out x = run(one(slice(seq, p, p + k)), one(ones(p + k)), one(range(p, k)), past, p);
            dCached = Math.max(dCached, diff(x, 0, 0, ref, p, k));
            past = x.present;
            p += k;
        }
        // step invariance: the same positions computed one token per call, in one 5-token call after a
        // past, and in the prefill must give the same bits (assisted decoding verifies blocks that plain
        // decoding computes one token at a time; a last-bit difference can flip a greedy near-tie)
        double dSteps = 0;
        {
            Out pre = run(one(slice(seq, 0, h)), one(ones(h)), one(range(0, h)), null, 0);
            int k5 = Math.min(5, L - h);
            Out block = run(one(slice(seq, h, h + k5)), one(ones(h + k5)), one(range(h, k5)), pre.present, h);
            float[][] pst = pre.present;
            for (int j = 0; j < k5; j++) {
                Out one = run(one(slice(seq, h + j, h + j + 1)), one(ones(h + j + 1)), one(range(h + j, 1)), pst, h + j);
                for (int v = 0; v < vocab; v++) {
                    float x = one.logits[v];
                    dSteps = Math.max(dSteps, Math.abs(x - block.logits[j * vocab + v]));
                    dSteps = Math.max(dSteps, Math.abs(x - o.logits[(h + j) * vocab + v]));
                }
                pst = one.present;
            }
        }
        // batch 2 with left padding
        int P = L - 8, pad = 3;
        long[][] ids = new long[2][P], mask = new long[2][P], pos = new long[2][P];
        for (int i = 0; i < P; i++) {
            ids[0][i] = seq[i]; mask[0][i] = 1; pos[0][i] = i;
            if (i < pad) { ids[1][i] = 0; mask[1][i] = 0; pos[1][i] = 1; }
            else { ids[1][i] = seq[i - pad]; mask[1][i] = 1; pos[1][i] = i - pad; }
        }
        Out bo = run(ids, mask, pos, null, 0);
        double dBatch = Math.max(diff(bo, 0, 0, ref, 0, P), diff(bo, 1, pad, ref, 0, P - pad));
        long[][] ids2 = {{seq[P], seq[P + 1]}, {seq[P - pad], seq[P - pad + 1]}};
        long[][] mask2 = new long[2][P + 2];
        for (int i = 0; i < P + 2; i++) { mask2[0][i] = 1; mask2[1][i] = i < pad ? 0 : 1; }
        long[][] pos2 = {{P, P + 1}, {P - pad, P - pad + 1}};
        Out b2 = run(ids2, mask2, pos2, bo.present, P);
        dBatch = Math.max(dBatch, Math.max(diff(b2, 0, 0, ref, P, 2), diff(b2, 1, 0, ref, P - pad, 2)));
        // greedy with cache
        long t0 = System.nanoTime();
        Out g = run(one(prompt), one(ones(prompt.length)), one(range(0, prompt.length)), null, 0);
        long tPrefill = System.nanoTime() - t0;
        List<Long> out = new ArrayList<>();
        int cur = prompt.length;
        long t1 = System.nanoTime();
        int steps = 0;
        while (out.size() < gen.length) {
            int tok = argmax(g.logits, (g.s - 1) * vocab);
            out.add((long) tok);
            if (tok == 2) break;
            g = run(one(new long[]{tok}), one(ones(cur + 1)), one(new long[]{cur}), g.present, cur);
            cur++;
            steps++;
        }
        double msPerTok = steps == 0 ? 0 : (System.nanoTime() - t1) / 1e6 / steps;
        int agree = 0;
        while (agree < Math.min(out.size(), gen.length) && out.get(agree) == gen[agree]) agree++;
        boolean greedyOk = agree == gen.length && out.size() == gen.length;
        // perplexity
        double nll = 0;
        long n = 0;
        long t2 = System.nanoTime();
        for (long[] d : docs) {
            int m = d.length - 1;
            Out x = run(one(slice(d, 0, m)), one(ones(m)), one(range(0, m)), null, 0);
            for (int i = 0; i < m; i++) {
                int off = i * vocab;
                double mx = Double.NEGATIVE_INFINITY;
                for (int k = 0; k < vocab; k++) mx = Math.max(mx, x.logits[off + k]);
                double se = 0;
                for (int k = 0; k < vocab; k++) se += Math.exp(x.logits[off + k] - mx);
                nll += Math.log(se) + mx - x.logits[off + (int) d[i + 1]];
                n++;
            }
        }
        double ppl = n == 0 ? Double.NaN : Math.exp(nll / n);
        double pplSec = (System.nanoTime() - t2) / 1e9;
        return new Result(dPrefill, dCached, dBatch, dSteps, Double.NaN, agree, greedyOk, tPrefill, msPerTok, ppl, n, pplSec);
    }

    // ---- the slots layout (/work/notes/slots.md): past [b, kvh, W, hd], keys written at position_ids ----

    /** One call of a slots graph; past = null means all slots zero. Every row's present is [kvh, W, hd]. */
    static Out runSlots(long[][] ids, long[][] pos, float[][] past, int w) throws OrtException {
        int b = ids.length, s = ids[0].length;
        Map<String, OnnxTensor> in = new LinkedHashMap<>();
        try {
            in.put("input_ids", t(flat(ids), b, s));
            in.put("position_ids", t(flat(pos), b, s));
            for (int i = 0; i < layers; i++) {
                for (int j = 0; j < 2; j++) {
                    float[] p = past == null ? new float[b * kvh * w * hd] : past[2 * i + j];
                    in.put("past_key_values." + i + (j == 0 ? ".key" : ".value"),
                            OnnxTensor.createTensor(env, FloatBuffer.wrap(p), new long[]{b, kvh, w, hd}));
                }
            }
            try (OrtSession.Result r = sess.run(in)) {
                Out o = new Out();
                o.b = b; o.s = s; o.total = w;
                o.logits = arr(((OnnxTensor) r.get("logits").get()).getFloatBuffer());
                o.present = new float[2 * layers][];
                for (int i = 0; i < layers; i++) {
                    o.present[2 * i] = arr(((OnnxTensor) r.get("present." + i + ".key").get()).getFloatBuffer());
                    o.present[2 * i + 1] = arr(((OnnxTensor) r.get("present." + i + ".value").get()).getFloatBuffer());
                }
                return o;
            }
        } finally {
            for (OnnxTensor x : in.values()) x.close();
        }
    }

    /** The cache width the engine would use for n positions: a multiple of 64 above the last position. */
    static int width(int n) { return (n + 63) / 64 * 64; }

    /**
     * Rows' caches of width {@code w} (each [layers*2][kvh*w*hd], batch 1) stacked into one batch of width
     * {@code w2 >= w}; every slot at or beyond the row's length {@code len[r]} gets random values (stale keys
     * of rolled-back tokens, as the engine may leave them: they must be masked, not zero).
     */
    static float[][] stack(List<float[][]> rows, int w, int w2, int[] len, Random rnd) {
        float[][] out = new float[2 * layers][rows.size() * kvh * w2 * hd];
        for (int li = 0; li < 2 * layers; li++) {
            for (int r = 0; r < rows.size(); r++) {
                for (int h = 0; h < kvh; h++) {
                    for (int j = 0; j < w2; j++) {
                        int dst = ((r * kvh + h) * w2 + j) * hd;
                        for (int d = 0; d < hd; d++) {
                            out[li][dst + d] = j < len[r] ? rows.get(r)[li][(h * w + j) * hd + d] : (float) rnd.nextGaussian();
                        }
                    }
                }
            }
        }
        return out;
    }

    /** Number of logits of row {@code r}'s first {@code n} tokens in {@code a} that differ (bitwise) from {@code alone}'s. */
    static int bitDiffs(Out a, int r, Out alone, int n) {
        int bad = 0;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < vocab; k++) {
                float x = a.logits[(r * a.s + i) * vocab + k], y = alone.logits[i * vocab + k];
                if (Float.floatToRawIntBits(x) != Float.floatToRawIntBits(y)) bad++;
            }
        }
        return bad;
    }

    static double maxAbs(Out a, int r, Out alone, int n) {
        double m = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < vocab; k++) m = Math.max(m, Math.abs(a.logits[(r * a.s + i) * vocab + k] - alone.logits[i * vocab + k]));
        return m;
    }

    static int batchLogitsCompared, batchLogitsDiffering;
    /** The placement part of the batch-invariance check ({@link #placementChecks}). */
    static int placementCalls, placementLogitsCompared, placementLogitsDiffering;
    static double placementMaxDiff;

    /** {@code n} tokens of {@code seq} from {@code start}, wrapping around (positions beyond the reference). */
    static long[] cyclic(long[] seq, int start, int n) {
        long[] r = new long[n];
        for (int i = 0; i < n; i++) r[i] = seq[(start + i) % seq.length];
        return r;
    }

    /**
     * Batch invariance by placement: a row's step alone (batch 1, T = its real tokens, mostly 1 as in plain
     * decoding) against the same row inside 3-row batches at every batch index (0, 1, 2), with T = the most real
     * tokens of the batch, 6 or 11 (the rest padding), after pasts of many lengths (positions 1 to ~130). Why
     * so many placements: an elementwise kernel may compute an element differently depending on where it sits
     * in the tensor (ONNX Runtime's CPU Cos/Sin: vectorised body vs scalar tail, last bits), so a graph that
     * computes anything per token in such a kernel (e.g. rotary angles) differs only for some positions and
     * some placements; the 3-row check above missed in-graph Cos/Sin, this one does not (NOTES.md "Slots layout").
     */
    static void placementChecks(long[] seq) throws OrtException {
        placementCalls = 0;
        placementLogitsCompared = 0;
        placementLogitsDiffering = 0;
        placementMaxDiff = 0;
        int[][] realTokens = {{1, 1, 1}, {1, 3, 2}, {5, 1, 4}};
        int maxT = 11, w1 = width(121 + maxT), w2 = w1 + 64;
        Random rnd = new Random(16);
        int c = 0;
        for (int[] t : realTokens) {
            int mostReal = Arrays.stream(t).max().getAsInt();
            for (int T : new int[]{mostReal, 6, maxT}) {
                for (int rot = 0; rot < 3; rot++, c++) {
                    // row r sits at batch index (r + rot) % 3, after a past of n[r] tokens of its own slice of seq
                    int[] n = new int[3], at = new int[3];
                    long[][] toks = new long[3][];
                    List<float[][]> pasts = new ArrayList<>(List.of(new float[0][], new float[0][], new float[0][]));
                    List<Out> alone = new ArrayList<>(List.of(new Out(), new Out(), new Out()));
                    long[][] ids = new long[3][T], pos = new long[3][T];
                    int[] len = new int[3];
                    for (int r = 0; r < 3; r++) {
                        n[r] = 1 + (7 * c + 41 * r) % 121;
                        at[r] = (r + rot) % 3;
                        toks[r] = cyclic(seq, 3 * c + 5 * r, n[r] + t[r]);
                        Out pre = runSlots(one(slice(toks[r], 0, n[r])), one(range(0, n[r])), null, w1);
                        alone.set(at[r], runSlots(one(slice(toks[r], n[r], n[r] + t[r])), one(range(n[r], t[r])), pre.present, w1));
                        pasts.set(at[r], pre.present);
                        len[at[r]] = n[r];
                        for (int i = 0; i < T; i++) {
                            ids[at[r]][i] = i < t[r] ? toks[r][n[r] + i] : 0;  // padding: any valid id, positions continuing
                            pos[at[r]][i] = n[r] + i;
                        }
                    }
                    Out b = runSlots(ids, pos, stack(pasts, w1, w2, len, rnd), w2);
                    for (int r = 0; r < 3; r++) comparePlacement(b, at[r], alone.get(at[r]), t[r]);
                }
            }
        }
        // decode at every position 1..127: the token alone (batch 1, T = 1) vs in a batch of 2 (T = 1) and in a batch
        // of 3 with T = 6 (the others feeding 6 and 3 real tokens at other positions), at a batch index that rotates
        // with the position. The past is one prefill of 128 tokens: slots at or beyond a row's position are masked.
        int P = 128;
        long[] toks = cyclic(seq, 0, P);
        float[][] full = runSlots(one(toks), one(range(0, P)), null, w1).present;
        for (int p = 1; p < P; p++) {
            Out alone = runSlots(one(new long[]{toks[p]}), one(new long[]{p}), full, w1);
            int q = 1 + (p + 40) % (P - 7), r = 1 + (p + 80) % (P - 7);  // the other rows' first positions
            long[][] ids2 = {{toks[q]}, {toks[q]}}, pos2 = {{q}, {q}};
            int at2 = p % 2;
            ids2[at2][0] = toks[p]; pos2[at2][0] = p;
            comparePlacement(runSlots(ids2, pos2, stack(List.of(full, full), w1, w2, new int[]{P, P}, rnd), w2), at2, alone, 1);
            long[][] ids3 = new long[3][6], pos3 = new long[3][6];
            int at3 = p % 3;
            int[] first = {q, r, q}, real = {6, 3, 6};
            first[at3] = p; real[at3] = 1;
            for (int b = 0; b < 3; b++) {
                for (int i = 0; i < 6; i++) {
                    ids3[b][i] = i < real[b] ? toks[Math.min(first[b] + i, P - 1)] : 0;
                    pos3[b][i] = first[b] + i;
                }
            }
            comparePlacement(runSlots(ids3, pos3, stack(List.of(full, full, full), w1, w2, new int[]{P, P, P}, rnd), w2), at3, alone, 1);
        }
    }

    /** Counts row {@code at}'s first {@code t} tokens of the batched call {@code b} against the row alone. */
    static void comparePlacement(Out b, int at, Out alone, int t) {
        placementCalls++;
        placementLogitsCompared += t * vocab;
        placementLogitsDiffering += bitDiffs(b, at, alone, t);
        placementMaxDiff = Math.max(placementMaxDiff, maxAbs(b, at, alone, t));
    }

    static Result slotsChecks(long[] seq, float[] ref, long[] prompt, long[] gen, List<long[]> docs) throws OrtException {
        int L = seq.length, w1 = width(L);
        Out o = runSlots(one(seq), one(range(0, L)), null, w1);
        double dPrefill = diff(o, 0, 0, ref, 0, L);
        // cached: half, then 5 at once, then 1 at a time
        int h = L / 2;
        Out a = runSlots(one(slice(seq, 0, h)), one(range(0, h)), null, w1);
        double dCached = diff(a, 0, 0, ref, 0, h);
        int p = h;
        float[][] past = a.present;
        while (p < L) {
            int k = p == h ? Math.min(5, L - p) : 1;
            Out x = runSlots(one(slice(seq, p, p + k)), one(range(p, k)), past, w1);
            dCached = Math.max(dCached, diff(x, 0, 0, ref, p, k));
            past = x.present;
            p += k;
        }
        // step invariance: one token per call vs one 5-token call after a past vs the prefill, to the bit
        double dSteps = 0;
        {
            int k5 = Math.min(5, L - h);
            Out block = runSlots(one(slice(seq, h, h + k5)), one(range(h, k5)), a.present, w1);
            float[][] pst = a.present;
            for (int j = 0; j < k5; j++) {
                Out one = runSlots(one(slice(seq, h + j, h + j + 1)), one(range(h + j, 1)), pst, w1);
                for (int v = 0; v < vocab; v++) {
                    float x = one.logits[v];
                    dSteps = Math.max(dSteps, Math.abs(x - block.logits[j * vocab + v]));
                    dSteps = Math.max(dSteps, Math.abs(x - o.logits[(h + j) * vocab + v]));
                }
                pst = one.present;
            }
        }
        // batch invariance: each row of a 3-row call (different lengths, different numbers of real tokens,
        // padded as slots.md says, cache width w2 != w1, stale values in unused slots) must give the bits the
        // row gets alone (batch 1, width w1). Two calls: a batched prefill, then a batched step after a past.
        batchLogitsCompared = 0;
        batchLogitsDiffering = 0;
        double dBatchInv = 0, dBatch = 0;
        Random rnd = new Random(15);
        int w2 = w1 + 64;
        {
            int[] start = {0, 3, 7};                 // each row is a different slice of seq
            int[] n = {L - 7, L - 18, L - 12};       // prompt lengths
            int[] t = {5, 1, 3};                     // real tokens fed in the step after the prompt
            long pad = 0;                            // any valid id (slots.md: padding writes beyond the row)
            int T0 = Arrays.stream(n).max().getAsInt(), T1 = Arrays.stream(t).max().getAsInt();
            long[][] ids = new long[3][T0], pos = new long[3][T0], ids2 = new long[3][T1], pos2 = new long[3][T1];
            List<float[][]> alonePast = new ArrayList<>();
            List<Out> alonePre = new ArrayList<>(), aloneStep = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                long[] toks = slice(seq, start[r], start[r] + n[r] + t[r]);
                for (int i = 0; i < T0; i++) { ids[r][i] = i < n[r] ? toks[i] : pad; pos[r][i] = i; }
                for (int i = 0; i < T1; i++) { ids2[r][i] = i < t[r] ? toks[n[r] + i] : pad; pos2[r][i] = n[r] + i; }
                Out pre = runSlots(one(slice(toks, 0, n[r])), one(range(0, n[r])), null, w1);
                alonePre.add(pre);
                alonePast.add(pre.present);
                aloneStep.add(runSlots(one(slice(toks, n[r], n[r] + t[r])), one(range(n[r], t[r])), pre.present, w1));
            }
            // batched prefill from an all-stale cache (every slot random): nothing but the row's own keys may count
            Out bp = runSlots(ids, pos, stack(alonePast, w1, w2, new int[3], rnd), w2);
            // batched step after each row's own past (built alone, at width w1), unused slots stale
            Out bs = runSlots(ids2, pos2, stack(alonePast, w1, w2, n, rnd), w2);
            for (int r = 0; r < 3; r++) {
                batchLogitsCompared += (n[r] + t[r]) * vocab;
                batchLogitsDiffering += bitDiffs(bp, r, alonePre.get(r), n[r]) + bitDiffs(bs, r, aloneStep.get(r), t[r]);
                dBatchInv = Math.max(dBatchInv, Math.max(maxAbs(bp, r, alonePre.get(r), n[r]), maxAbs(bs, r, aloneStep.get(r), t[r])));
            }
            // against torch: row 0 is a prefix of seq, so the reference applies to its prefill and step
            dBatch = Math.max(diff(bp, 0, 0, ref, 0, n[0]), diff(bs, 0, 0, ref, n[0], t[0]));
        }
        placementChecks(seq);
        // greedy with cache
        int wg = width(prompt.length + gen.length);
        long t0 = System.nanoTime();
        Out g = runSlots(one(prompt), one(range(0, prompt.length)), null, wg);
        long tPrefill = System.nanoTime() - t0;
        List<Long> out = new ArrayList<>();
        int cur = prompt.length;
        long t1 = System.nanoTime();
        int steps = 0;
        while (out.size() < gen.length) {
            int tok = argmax(g.logits, (g.s - 1) * vocab);
            out.add((long) tok);
            if (tok == 2) break;
            g = runSlots(one(new long[]{tok}), one(new long[]{cur}), g.present, wg);
            cur++;
            steps++;
        }
        double msPerTok = steps == 0 ? 0 : (System.nanoTime() - t1) / 1e6 / steps;
        int agree = 0;
        while (agree < Math.min(out.size(), gen.length) && out.get(agree) == gen[agree]) agree++;
        boolean greedyOk = agree == gen.length && out.size() == gen.length;
        double nll = 0;
        long cnt = 0;
        long t2 = System.nanoTime();
        for (long[] d : docs) {
            int m = d.length - 1;
            Out x = runSlots(one(slice(d, 0, m)), one(range(0, m)), null, width(m));
            for (int i = 0; i < m; i++) {
                int off = i * vocab;
                double mx = Double.NEGATIVE_INFINITY;
                for (int k = 0; k < vocab; k++) mx = Math.max(mx, x.logits[off + k]);
                double se = 0;
                for (int k = 0; k < vocab; k++) se += Math.exp(x.logits[off + k] - mx);
                nll += Math.log(se) + mx - x.logits[off + (int) d[i + 1]];
                cnt++;
            }
        }
        double ppl = cnt == 0 ? Double.NaN : Math.exp(nll / cnt);
        double pplSec = (System.nanoTime() - t2) / 1e9;
        return new Result(dPrefill, dCached, dBatch, dSteps, dBatchInv, agree, greedyOk, tPrefill, msPerTok, ppl, cnt, pplSec);
    }

    /** Greedy continuation of {@code prompt} (up to maxNew tokens, stopping after EOS), one token per call. */
    static List<Long> greedy(long[] prompt, int maxNew, boolean slots) throws OrtException {
        int w = width(prompt.length + maxNew);
        Out g = slots ? runSlots(one(prompt), one(range(0, prompt.length)), null, w)
                : run(one(prompt), one(ones(prompt.length)), one(range(0, prompt.length)), null, 0);
        List<Long> out = new ArrayList<>();
        int cur = prompt.length;
        while (out.size() < maxNew) {
            int tok = argmax(g.logits, (g.s - 1) * vocab);
            out.add((long) tok);
            if (tok == 2) break;
            g = slots ? runSlots(one(new long[]{tok}), one(new long[]{cur}), g.present, w)
                    : run(one(new long[]{tok}), one(ones(cur + 1)), one(new long[]{cur}), g.present, cur);
            cur++;
        }
        return out;
    }

    /** Logits [n, vocab] at the prompt's last position and at each token of {@code cont} but its last (one call). */
    static float[] forcedLogits(long[] prompt, List<Long> cont, boolean slots) throws OrtException {
        int m = prompt.length + Math.max(0, cont.size() - 1);
        long[] x = Arrays.copyOf(prompt, m);
        for (int i = prompt.length; i < m; i++) x[i] = cont.get(i - prompt.length);
        Out o = slots ? runSlots(one(x), one(range(0, m)), null, width(m)) : run(one(x), one(ones(m)), one(range(0, m)), null, 0);
        return Arrays.copyOfRange(o.logits, (prompt.length - 1) * vocab, m * vocab);
    }

    /** Perplexity of documents <s> ... </s> (each alone, one prefill): {ppl, tokens, seconds}. */
    static double[] perplexity(List<long[]> docs, boolean slots) throws OrtException {
        double nll = 0;
        long n = 0;
        long t0 = System.nanoTime();
        for (long[] d : docs) {
            int m = d.length - 1;
            Out x = slots ? runSlots(one(slice(d, 0, m)), one(range(0, m)), null, width(m))
                    : run(one(slice(d, 0, m)), one(ones(m)), one(range(0, m)), null, 0);
            for (int i = 0; i < m; i++) {
                int off = i * vocab;
                double mx = Double.NEGATIVE_INFINITY;
                for (int k = 0; k < vocab; k++) mx = Math.max(mx, x.logits[off + k]);
                double se = 0;
                for (int k = 0; k < vocab; k++) se += Math.exp(x.logits[off + k] - mx);
                nll += Math.log(se) + mx - x.logits[off + (int) d[i + 1]];
                n++;
            }
        }
        return new double[]{n == 0 ? Double.NaN : Math.exp(nll / n), n, (System.nanoTime() - t0) / 1e9};
    }

    static List<long[]> readDocs(String path) throws IOException {
        List<long[]> docs = new ArrayList<>();
        ByteBuffer hb = readAll(path);
        int n = hb.getInt();
        for (int i = 0; i < n; i++) docs.add(longs(hb, hb.getInt()));
        return docs;
    }

    public static void main(String[] args) throws Exception {
        String refPath = null, heldPath = null, jsonPath = null;
        List<String> extraHeld = new ArrayList<>();  // --heldout-extra NAME=docs.bin: more perplexities, "heldout_NAME_ppl"
        String promptsPath = null;  // extra prompts: every model's greedy continuation must be the same
        int maxNew = 60;
        boolean stepVarianceOk = false;  // a draft's graph need not be step-invariant
        boolean greedyDifferOk = false;  // a draft's re-export need not continue the prompts as the first model does
        List<String> models = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--ref" -> refPath = args[++i];
                case "--heldout" -> heldPath = args[++i];
                case "--heldout-extra" -> extraHeld.add(args[++i]);
                case "--json" -> jsonPath = args[++i];
                case "--step-variance-ok" -> stepVarianceOk = true;
                case "--greedy-differ-ok" -> greedyDifferOk = true;
                case "--prompts" -> promptsPath = args[++i];
                case "--max-new" -> maxNew = Integer.parseInt(args[++i]);
                default -> models.add(args[i]);
            }
        }
        ByteBuffer rb = readAll(refPath);
        if (rb.getInt() != 0x4D444E54) throw new IllegalStateException("bad ref magic");
        int L = rb.getInt();
        vocab = rb.getInt();
        long[] seq = longs(rb, L);
        float[] ref = new float[L * vocab];
        rb.asFloatBuffer().get(ref);
        rb.position(rb.position() + 4 * L * vocab);
        long[] prompt = longs(rb, rb.getInt());
        long[] gen = longs(rb, rb.getInt());
        List<long[]> docs = new ArrayList<>();
        if (heldPath != null) {
            ByteBuffer hb = readAll(heldPath);
            int n = hb.getInt();
            for (int i = 0; i < n; i++) docs.add(longs(hb, hb.getInt()));
        }
        Map<String, List<long[]>> extraDocs = new LinkedHashMap<>();
        for (String e : extraHeld) {
            int eq = e.indexOf('=');
            extraDocs.put(e.substring(0, eq), readDocs(e.substring(eq + 1)));
        }
        List<long[]> extraPrompts = new ArrayList<>();
        if (promptsPath != null) {
            ByteBuffer pb = readAll(promptsPath);
            int n = pb.getInt();
            for (int i = 0; i < n; i++) extraPrompts.add(longs(pb, pb.getInt()));
        }
        List<List<Long>> firstGreedy = null;
        List<float[]> firstForced = null;  // the first model's logits along its own --prompts continuations
        boolean ok = true;
        StringBuilder json = new StringBuilder("{\n");
        for (int mi = 0; mi < models.size(); mi++) {
            String spec = models.get(mi);
            double tol = Double.NaN;
            int c = spec.lastIndexOf(':');
            if (c > 0 && spec.substring(c + 1).matches("[0-9.eE+-]+")) {
                tol = Double.parseDouble(spec.substring(c + 1));
                spec = spec.substring(0, c);
            }
            OrtSession.SessionOptions so = new OrtSession.SessionOptions();
            so.setIntraOpNumThreads(2);
            so.setInterOpNumThreads(1);
            so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            sess = env.createSession(spec, so);
            layers = 0;
            for (var e : sess.getInputInfo().entrySet()) {
                if (e.getKey().startsWith("past_key_values.") && e.getKey().endsWith(".key")) {
                    layers++;
                    long[] sh = ((TensorInfo) e.getValue().getInfo()).getShape();
                    kvh = (int) sh[1]; hd = (int) sh[3];
                }
            }
            boolean slots = "slots".equals(sess.getMetadata().getCustomMetadata().get("tandem.kv_layout"));
            Result res = slots ? slotsChecks(seq, ref, prompt, gen, docs) : optimumChecks(seq, ref, prompt, gen, docs);
            double dPrefill = res.prefill, dCached = res.cached, dBatch = res.batch, dSteps = res.steps, ppl = res.ppl;
            double dBatchInv = res.batchInvariance, msPerTok = res.msPerTok, tPrefill = res.prefillNanos, pplSec = res.pplSec;
            int agree = res.agree;
            long n = res.pplTokens;
            boolean greedyOk = res.greedyOk;
            double maxDiff = Math.max(dPrefill, Math.max(dCached, dBatch));
            // A graph given with a tolerance (fp32) is checked against torch; one without (the int8 graph the
            // service serves) must be step-invariant to the bit. fp32 cannot be: its weight MatMuls run as GEMV
            // for one token and as GEMM for several (last-bit differences, ~1e-6); int8 weight products are
            // integer-exact and the attention is exported row by row (model.Attention.row_wise).
            // A slots graph without a tolerance must also be batch-invariant to the bit (slots.md); a slots
            // graph is always exported step-invariant, so --step-variance-ok does not apply to it.
            boolean invariant = slots ? dSteps == 0 && batchLogitsDiffering == 0 && placementLogitsDiffering == 0
                    : (dSteps == 0 || stepVarianceOk);
            boolean pass = Double.isNaN(tol) ? invariant : (maxDiff <= tol && greedyOk);
            // --prompts: greedy continuations, which must equal the first model's (e.g. a re-export vs the shipped graph)
            List<List<Long>> greedies = new ArrayList<>();
            for (long[] pr : extraPrompts) greedies.add(greedy(pr, maxNew, slots));
            int sameGreedy = 0, samePrefixTokens = 0, firstTokens = 0;
            if (firstGreedy == null) firstGreedy = greedies;
            for (int i = 0; i < greedies.size(); i++) {
                List<Long> a = greedies.get(i), b = firstGreedy.get(i);
                if (a.equals(b)) sameGreedy++;
                int k = 0;
                while (k < a.size() && k < b.size() && a.get(k).equals(b.get(k))) k++;
                samePrefixTokens += k;
                firstTokens += b.size();
            }
            pass &= greedyDifferOk || sameGreedy == greedies.size();
            // teacher-forced along the first model's continuations: the logits every later model gives at the same prefixes
            List<float[]> forced = new ArrayList<>();
            for (int i = 0; i < extraPrompts.size(); i++) forced.add(forcedLogits(extraPrompts.get(i), firstGreedy.get(i), slots));
            if (firstForced == null) firstForced = forced;
            double forcedMaxDiff = 0;
            long forcedRows = 0, forcedSameArgmax = 0;
            for (int i = 0; i < forced.size(); i++) {
                float[] a = forced.get(i), b = firstForced.get(i);
                for (int off = 0; off < a.length; off += vocab) {
                    for (int k = 0; k < vocab; k++) forcedMaxDiff = Math.max(forcedMaxDiff, Math.abs(a[off + k] - b[off + k]));
                    forcedRows++;
                    if (argmax(a, off) == argmax(b, off)) forcedSameArgmax++;
                }
            }
            ok &= pass;
            String name = Path.of(spec).getFileName().toString();
            System.out.printf(Locale.ROOT, "%s: layout=%s layers=%d kv_heads=%d head_dim=%d vocab=%d%n", spec,
                    slots ? "slots" : "optimum", layers, kvh, hd, vocab);
            System.out.printf(Locale.ROOT, "  max_abs_logit_diff prefill=%.3g cached=%.3g batch_padded=%.3g (tol %s) %s%n",
                    dPrefill, dCached, dBatch, Double.isNaN(tol) ? "none" : tol, pass ? "PASS" : "FAIL");
            System.out.printf(Locale.ROOT, "  step invariance (one token per call vs a 5-token call vs prefill): max diff %.3g%s%n", dSteps,
                    Double.isNaN(tol) && !stepVarianceOk ? " (must be 0)" : "");
            if (slots) {
                System.out.printf(Locale.ROOT, "  batch invariance (3 rows, width %s vs alone): %d of %d logits differ, max diff %.3g%s%n",
                        "w+64", batchLogitsDiffering, batchLogitsCompared, dBatchInv, Double.isNaN(tol) ? " (must be 0)" : "");
                System.out.printf(Locale.ROOT, "  batch invariance by placement (%d rows alone vs at batch index 0/1/2 of batches of 2-3 rows with T = 1..11, positions 1..127): %d of %d logits differ, max diff %.3g%s%n",
                        placementCalls, placementLogitsDiffering, placementLogitsCompared, placementMaxDiff, Double.isNaN(tol) ? " (must be 0)" : "");
            }
            System.out.printf(Locale.ROOT, "  greedy: %d/%d tokens equal to torch; prefill %.1f ms (%d tok), decode %.2f ms/token%n",
                    agree, gen.length, tPrefill / 1e6, prompt.length, msPerTok);
            if (!extraPrompts.isEmpty()) {
                System.out.printf(Locale.ROOT, "  greedy on %d prompts (up to %d tokens): %d equal to the first model's%n",
                        greedies.size(), maxNew, sameGreedy);
                for (List<Long> gr : greedies) System.out.println("    " + gr);
                System.out.printf(Locale.ROOT, "  greedy agreement with the first model: %d of its %d tokens before the first difference%n",
                        samePrefixTokens, firstTokens);
                System.out.printf(Locale.ROOT, "  along the first model's continuations (%d positions, one call per prompt): max abs logit diff %.3g, same argmax %d%n",
                        forcedRows, forcedMaxDiff, forcedSameArgmax);
            }
            System.out.printf(Locale.ROOT, "  heldout ppl %.4f over %d tokens (%d documents, %.1f s)%n", ppl, n, docs.size(), pplSec);
            StringBuilder extraJson = new StringBuilder();
            for (var e : extraDocs.entrySet()) {
                double[] r = perplexity(e.getValue(), slots);
                System.out.printf(Locale.ROOT, "  heldout %s ppl %.4f over %d tokens (%d documents, %.1f s)%n", e.getKey(), r[0],
                        (long) r[1], e.getValue().size(), r[2]);
                extraJson.append(String.format(Locale.ROOT, "\"heldout_%s_ppl\": %.6f, \"heldout_%s_tokens\": %d, ",
                        e.getKey(), r[0], e.getKey(), (long) r[1]));
            }
            json.append(String.format(Locale.ROOT,
                    "  \"%s\": {\"max_abs_logit_diff\": %.6g, \"prefill\": %.6g, \"cached\": %.6g, \"batch_padded\": %.6g, " +
                            "\"step_invariance\": %.6g, \"layout\": \"%s\", \"batch_invariance\": %s, \"batch_logits_differing\": %s, \"placement_logits_differing\": %s, \"greedy_equal\": %d, \"greedy_len\": %d, \"decode_ms_per_token\": %.3f, \"heldout_ppl\": %.6f, " +
                            "\"heldout_tokens\": %d, %s\"prompts_greedy\": %s, \"prompts_greedy_equal\": %d, \"prompts_greedy_prefix_tokens\": %d, " +
                            "\"prompts_first_model_tokens\": %d, \"prompts_forced_positions\": %d, \"prompts_forced_max_abs_logit_diff\": %.6g, " +
                            "\"prompts_forced_same_argmax\": %d, \"pass\": %s}%s\n",
                    name, maxDiff, dPrefill, dCached, dBatch, dSteps, slots ? "slots" : "optimum",
                    slots ? String.format(Locale.ROOT, "%.6g", Math.max(dBatchInv, placementMaxDiff)) : "null", slots ? Integer.toString(batchLogitsDiffering) : "null",
                    slots ? Integer.toString(placementLogitsDiffering) : "null", agree, gen.length, msPerTok, ppl, n, extraJson, greedies, sameGreedy, samePrefixTokens, firstTokens,
                    forcedRows, forcedMaxDiff, forcedSameArgmax, pass,
                    mi + 1 < models.size() ? "," : ""));
            sess.close();
        }
        json.append("}\n");
        if (jsonPath != null) Files.writeString(Path.of(jsonPath), json.toString());
        System.out.println(ok ? "ALL PASS" : "SOME FAILED");
        System.exit(ok ? 0 : 1);
    }
}
