/*
 * A stand-in for libopenvino_c.so, for OpenVinoStubLibraryTest: the same C signatures and struct
 * layouts as the OpenVINO headers (ov_common.h, ov_core.h, ov_shape.h, ov_partial_shape.h, ...),
 * behind which sits a toy "model" (1 layer, 2 KV heads, head_dim 2, vocab 5) in the Optimum layout.
 * It proves the Java side's downcalls, struct marshalling (including ov_shape_t by value), the
 * variadic ov_core_compile_model and the per-step tensor binding, and counts live objects so the
 * test can check that everything created is freed. It is NOT OpenVINO.
 *
 * Toy model: key[h][pos][d] = token*10 + h + d/2, value = key + 1000;
 * logits[i][v] = v*1000 + sum over positions t <= past+i of key[1][t][0].
 *
 * A model path containing "stateful" reads as the stateful form of the same toy (optimum-intel's
 * default IR export): inputs input_ids, attention_mask, position_ids, beam_idx (i32), output logits,
 * no past/present tensors. Each infer request keeps the tokens fed so far as its "variable state"
 * and computes the same logits from them, so both forms agree on every sequence. Like the real C
 * API, the stub has no call to read, trim or reset that state.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int64_t rank; int64_t* dims; } ov_shape_t;
typedef struct { int64_t min; int64_t max; } ov_dimension_t;
typedef struct { ov_dimension_t rank; ov_dimension_t* dims; } ov_partial_shape_t;
typedef struct { const char* buildNumber; const char* description; } ov_version_t;
typedef struct { int type; int64_t rank; int64_t dims[8]; void* data; } ov_tensor_t;
typedef struct { int stateful; } model_t;  /* also the compiled model */
typedef struct { size_t index; int output; int stateful; } port_t;
typedef struct { char name[64]; ov_tensor_t t; } slot_t;
#define MAX_STATE 64
typedef struct { slot_t slots[16]; int n; int stateful; int64_t state[MAX_STATE]; int64_t state_len; } request_t;

const char* ov_property_key_hint_performance_mode = "PERFORMANCE_HINT";
const char* ov_property_key_inference_num_threads = "INFERENCE_NUM_THREADS";
const char* ov_property_key_hint_inference_precision = "INFERENCE_PRECISION_HINT";
const char* ov_property_key_cache_dir = "CACHE_DIR";

static char last_err[256];
static char compile_log[1024];
static long live;

const char* stub_compile_log(void) { return compile_log; }
long stub_live_objects(void) { return live; }

static const char* in_names[] = {"input_ids", "attention_mask", "position_ids", "past_key_values.0.key", "past_key_values.0.value"};
static const char* out_names[] = {"logits", "present.0.key", "present.0.value"};
static const char* stateful_in_names[] = {"input_ids", "attention_mask", "position_ids", "beam_idx"};
static const char* stateful_out_names[] = {"logits"};
static size_t n_inputs(int stateful) { return stateful ? 4 : 5; }
static size_t n_outputs(int stateful) { return stateful ? 1 : 3; }
static const char* port_name(int stateful, int output, size_t i) {
    return stateful ? (output ? stateful_out_names : stateful_in_names)[i] : (output ? out_names : in_names)[i];
}

static void* track(size_t n) { live++; return calloc(1, n); }
static void untrack(void* p) { if (p) { live--; free(p); } }
static char* dup(const char* s) { live++; return strdup(s); }
static int fail(int status, const char* msg) { snprintf(last_err, sizeof last_err, "%s", msg); return status; }

int ov_get_openvino_version(ov_version_t* v) {
    v->buildNumber = dup("2024.2.0-stub");
    v->description = dup("OpenVINO Runtime (stub)");
    return 0;
}
void ov_version_free(ov_version_t* v) { untrack((void*) v->buildNumber); untrack((void*) v->description); }
const char* ov_get_error_info(int status) { return "stub error info"; }
/* like OpenVINO: a fresh copy of the process-wide message (caller ov_free's it), NULL when empty */
const char* ov_get_last_err_msg(void) { return last_err[0] ? dup(last_err) : NULL; }
void ov_free(const char* p) { untrack((void*) p); }

int ov_core_create(void** core) { *core = track(8); return 0; }
void ov_core_free(void* core) { untrack(core); }
int ov_core_read_model(const void* core, const char* path, const char* bin, void** model) {
    if (!core || !path || !model) return -14;
    if (strstr(path, "missing")) return fail(-1, "Exception from stub: cannot open the model file");
    model_t* m = track(sizeof(model_t));
    m->stateful = strstr(path, "stateful") != NULL;
    *model = m;
    return 0;
}
void ov_model_free(void* model) { untrack(model); }
int ov_model_inputs_size(const model_t* m, size_t* n) { *n = n_inputs(m->stateful); return 0; }
int ov_model_outputs_size(const model_t* m, size_t* n) { *n = n_outputs(m->stateful); return 0; }
static int port(const model_t* m, size_t i, int output, void** out) {
    if (i >= (output ? n_outputs(m->stateful) : n_inputs(m->stateful))) return fail(-6, "port index out of bounds");
    port_t* p = track(sizeof(port_t));
    p->index = i;
    p->output = output;
    p->stateful = m->stateful;
    *out = p;
    return 0;
}
int ov_model_const_input_by_index(const model_t* m, size_t i, void** out) { return port(m, i, 0, out); }
int ov_model_const_output_by_index(const model_t* m, size_t i, void** out) { return port(m, i, 1, out); }
void ov_output_const_port_free(void* p) { untrack(p); }
int ov_port_get_any_name(const port_t* p, char** name) {
    *name = dup(port_name(p->stateful, p->output, p->index));
    return 0;
}
int ov_port_get_element_type(const port_t* p, int* type) {
    if (p->stateful && !p->output && p->index == 3) *type = 10;  /* beam_idx: I32 */
    else *type = (!p->output && p->index < 3) ? 11 /* I64 */ : 5 /* F32 */;
    return 0;
}
int ov_port_get_partial_shape(const port_t* p, ov_partial_shape_t* ps) {
    int kv = !p->stateful && (p->output ? p->index > 0 : p->index > 2);
    int beam = p->stateful && !p->output && p->index == 3;
    int64_t rank = kv ? 4 : beam ? 1 : (p->output ? 3 : 2);
    ps->rank.min = ps->rank.max = rank;
    ps->dims = track(rank * sizeof(ov_dimension_t));
    for (int i = 0; i < rank; i++) { ps->dims[i].min = 0; ps->dims[i].max = -1; }
    if (kv) { ps->dims[1].min = ps->dims[1].max = 2; ps->dims[3].min = ps->dims[3].max = 2; }
    if (p->output && p->index == 0) ps->dims[2].min = ps->dims[2].max = 5;
    return 0;
}
void ov_partial_shape_free(ov_partial_shape_t* ps) { untrack(ps->dims); ps->dims = NULL; }
int ov_shape_create(ov_shape_t* s, int64_t rank, int64_t* dims) {
    s->rank = rank;
    s->dims = track(rank * sizeof(int64_t));
    if (dims) memcpy(s->dims, dims, rank * sizeof(int64_t));
    return 0;
}
int ov_shape_free(ov_shape_t* s) { untrack(s->dims); s->dims = NULL; return 0; }

int ov_core_compile_model(const void* core, const void* model, const char* device, const size_t n, void** compiled, ...) {
    if (!core || !model || !compiled || n % 2 != 0) return -14;
    snprintf(compile_log, sizeof compile_log, "%s", device);
    va_list ap;
    va_start(ap, compiled);
    for (size_t i = 0; i < n / 2; i++) {
        const char* k = va_arg(ap, const char*);
        const char* v = va_arg(ap, const char*);
        size_t len = strlen(compile_log);
        snprintf(compile_log + len, sizeof compile_log - len, " %s=%s", k, v);
    }
    va_end(ap);
    if (strcmp(device, "NPU") == 0) return fail(-1, "Device with \"NPU\" name is not registered");
    model_t* c = track(sizeof(model_t));
    c->stateful = ((const model_t*) model)->stateful;
    *compiled = c;
    return 0;
}
void ov_compiled_model_free(void* c) { untrack(c); }
int ov_compiled_model_create_infer_request(const model_t* c, void** req) {
    request_t* r = track(sizeof(request_t));
    r->stateful = c->stateful;
    *req = r;
    return 0;
}
void ov_infer_request_free(void* r) { untrack(r); }

int ov_tensor_create_from_host_ptr(int type, ov_shape_t shape, void* host, void** out) {
    if (!out || !host || shape.rank > 8) return -14;  /* like OpenVINO: a NULL host_ptr is INVALID_C_PARAM */
    ov_tensor_t* t = track(sizeof(ov_tensor_t));
    t->type = type;
    t->rank = shape.rank;
    memcpy(t->dims, shape.dims, shape.rank * sizeof(int64_t));
    t->data = host;
    *out = t;
    return 0;
}
void ov_tensor_free(void* t) { untrack(t); }
int ov_infer_request_set_tensor(request_t* r, const char* name, const ov_tensor_t* t) {
    int known = 0;  /* like OpenVINO: only the model's own inputs and outputs can be set */
    for (size_t i = 0; i < n_inputs(r->stateful); i++) known |= strcmp(name, port_name(r->stateful, 0, i)) == 0;
    for (size_t i = 0; i < n_outputs(r->stateful); i++) known |= strcmp(name, port_name(r->stateful, 1, i)) == 0;
    if (!known) return fail(-5, "the model has no port with this name");
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->slots[i].name, name) == 0) { r->slots[i].t = *t; return 0; }
    }
    if (r->n == 16) return fail(-6, "too many tensors");
    snprintf(r->slots[r->n].name, 64, "%s", name);
    r->slots[r->n++].t = *t;
    return 0;
}
static ov_tensor_t* get(request_t* r, const char* name) {
    for (int i = 0; i < r->n; i++) if (strcmp(r->slots[i].name, name) == 0) return &r->slots[i].t;
    return NULL;
}

/* The stateful toy: the state is the tokens fed so far; logits as the stateless toy computes them. */
static int infer_stateful(request_t* r) {
    ov_tensor_t *ids = get(r, "input_ids"), *mask = get(r, "attention_mask"), *pos = get(r, "position_ids");
    ov_tensor_t *beam = get(r, "beam_idx"), *logits = get(r, "logits");
    if (!ids || !mask || !pos || !beam || !logits) return fail(-5, "a tensor was not set");
    int64_t s = ids->dims[1], past = r->state_len, total = past + s;
    if (beam->type != 10 || beam->rank != 1 || beam->dims[0] != 1 || ((int32_t*) beam->data)[0] != 0)
        return fail(-4, "beam_idx must be one i32 zero");
    if (mask->dims[1] != total) return fail(-4, "attention_mask length != state + new tokens");
    if (logits->type != 5 || logits->dims[1] != s || logits->dims[2] != 5) return fail(-4, "bad logits tensor");
    if (total > MAX_STATE) return fail(-6, "stub state is full");
    int64_t* id = ids->data;
    for (int64_t i = 0; i < s; i++) {
        if (((int64_t*) pos->data)[i] != past + i) return fail(-4, "position_ids do not continue the state");
        if (((int64_t*) mask->data)[i] != 1) return fail(-4, "attention_mask is not all ones");
    }
    for (int64_t i = 0; i < s; i++) r->state[past + i] = id[i];
    r->state_len = total;
    float* L = logits->data;
    for (int64_t i = 0; i < s; i++) {
        float sum = 0;
        for (int64_t t = 0; t <= past + i; t++) sum += r->state[t] * 10 + 1;  /* key[1][t][0] of the stateless toy */
        for (int v = 0; v < 5; v++) L[i * 5 + v] = v * 1000 + sum;
    }
    return 0;
}

int ov_infer_request_infer(request_t* r) {
    if (r->stateful) return infer_stateful(r);
    ov_tensor_t *ids = get(r, "input_ids"), *mask = get(r, "attention_mask"), *pos = get(r, "position_ids");
    ov_tensor_t *logits = get(r, "logits");
    if (!ids || !mask || !pos || !logits) return fail(-5, "a tensor was not set");
    int64_t s = ids->dims[1];
    ov_tensor_t* pk = get(r, "past_key_values.0.key");
    if (!pk) return fail(-5, "past not set");
    int64_t past = pk->dims[2], total = past + s;
    if (mask->dims[1] != total) return fail(-4, "attention_mask length != past + new tokens");
    if (logits->type != 5 || logits->dims[1] != s || logits->dims[2] != 5) return fail(-4, "bad logits tensor");
    int64_t* id = ids->data;
    int64_t* p = pos->data;
    for (int64_t i = 0; i < s; i++) {
        if (p[i] != past + i) return fail(-4, "position_ids do not continue the past");
        if (((int64_t*) mask->data)[i] != 1) return fail(-4, "attention_mask is not all ones");
    }
    for (int kv = 0; kv < 2; kv++) {
        ov_tensor_t* P = get(r, kv ? "past_key_values.0.value" : "past_key_values.0.key");
        ov_tensor_t* Q = get(r, kv ? "present.0.value" : "present.0.key");
        if (!P || !Q) return fail(-5, "kv tensors not set");
        if (P->dims[1] != 2 || P->dims[3] != 2 || P->dims[2] != past || Q->dims[2] != total)
            return fail(-4, "kv shapes do not match");
        float *src = P->data, *dst = Q->data;
        for (int h = 0; h < 2; h++) {
            for (int64_t t = 0; t < past; t++)
                for (int d = 0; d < 2; d++) dst[(h * total + t) * 2 + d] = src[(h * past + t) * 2 + d];
            for (int64_t i = 0; i < s; i++)
                for (int d = 0; d < 2; d++) dst[(h * total + past + i) * 2 + d] = id[i] * 10 + h + d * 0.5f + kv * 1000;
        }
    }
    float* key = get(r, "present.0.key")->data;
    float* L = logits->data;
    for (int64_t i = 0; i < s; i++) {
        float sum = 0;
        for (int64_t t = 0; t <= past + i; t++) sum += key[(1 * total + t) * 2 + 0];
        for (int v = 0; v < 5; v++) L[i * 5 + v] = v * 1000 + sum;
    }
    return 0;
}
