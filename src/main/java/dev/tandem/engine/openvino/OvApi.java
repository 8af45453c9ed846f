package dev.tandem.engine.openvino;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Downcalls into the OpenVINO C API ({@code libopenvino_c.so}) through the Foreign Function &amp;
 * Memory API, with the struct layouts and enum values the binding relies on.
 *
 * <p>Every signature, enum value and struct layout below is transcribed from the public headers in
 * {@code src/bindings/c/include/openvino/c/} of the OpenVINO repository (2024 line); each is
 * annotated with its header. C types map as: {@code ov_status_e} and {@code ov_element_type_e}
 * (C enums) to {@code int}, {@code size_t} and {@code int64_t} to {@code long} (LP64 Linux),
 * every pointer and opaque handle to {@link MemorySegment}.
 *
 * <p>Calls that return {@code ov_status_e} go through {@link #check}, which turns a non-OK status
 * into an {@link OpenVinoException} carrying the status name and {@code ov_get_last_err_msg()}.
 */
final class OvApi {

    // ---- struct layouts -------------------------------------------------------------------

    /** ov_shape.h: {@code typedef struct { int64_t rank; int64_t* dims; } ov_shape_t;} */
    static final StructLayout SHAPE = MemoryLayout.structLayout(
            JAVA_LONG.withName("rank"),
            ADDRESS.withName("dims")).withName("ov_shape_t");

    /** ov_dimension.h: {@code typedef struct ov_dimension { int64_t min; int64_t max; } ov_dimension_t;} */
    static final StructLayout DIMENSION = MemoryLayout.structLayout(
            JAVA_LONG.withName("min"),
            JAVA_LONG.withName("max")).withName("ov_dimension_t");

    /**
     * ov_partial_shape.h: {@code typedef struct ov_partial_shape { ov_rank_t rank; ov_dimension_t* dims; }},
     * with ov_rank.h: {@code typedef ov_dimension_t ov_rank_t;}
     */
    static final StructLayout PARTIAL_SHAPE = MemoryLayout.structLayout(
            DIMENSION.withName("rank"),
            ADDRESS.withName("dims")).withName("ov_partial_shape_t");

    /** ov_core.h: {@code typedef struct ov_version { const char* buildNumber; const char* description; } ov_version_t;} */
    static final StructLayout VERSION = MemoryLayout.structLayout(
            ADDRESS.withName("buildNumber"),
            ADDRESS.withName("description")).withName("ov_version_t");

    static final long SHAPE_RANK = SHAPE.byteOffset(MemoryLayout.PathElement.groupElement("rank"));
    static final long SHAPE_DIMS = SHAPE.byteOffset(MemoryLayout.PathElement.groupElement("dims"));
    static final long DIM_MIN = DIMENSION.byteOffset(MemoryLayout.PathElement.groupElement("min"));
    static final long DIM_MAX = DIMENSION.byteOffset(MemoryLayout.PathElement.groupElement("max"));
    static final long PSHAPE_RANK = PARTIAL_SHAPE.byteOffset(MemoryLayout.PathElement.groupElement("rank"));
    static final long PSHAPE_DIMS = PARTIAL_SHAPE.byteOffset(MemoryLayout.PathElement.groupElement("dims"));
    static final long VERSION_BUILD = VERSION.byteOffset(MemoryLayout.PathElement.groupElement("buildNumber"));
    static final long VERSION_DESCRIPTION = VERSION.byteOffset(MemoryLayout.PathElement.groupElement("description"));

    // ---- enums ----------------------------------------------------------------------------

    /** ov_common.h, {@code ov_status_e}: every value the header defines (unchanged 2022.1 .. 2025). */
    enum Status {
        OK(0), GENERAL_ERROR(-1), NOT_IMPLEMENTED(-2), NETWORK_NOT_LOADED(-3), PARAMETER_MISMATCH(-4),
        NOT_FOUND(-5), OUT_OF_BOUNDS(-6), UNEXPECTED(-7), REQUEST_BUSY(-8), RESULT_NOT_READY(-9),
        NOT_ALLOCATED(-10), INFER_NOT_STARTED(-11), NETWORK_NOT_READ(-12), INFER_CANCELLED(-13),
        INVALID_C_PARAM(-14), UNKNOWN_C_ERROR(-15), NOT_IMPLEMENT_C_METHOD(-16),
        UNKNOW_EXCEPTION(-17); // sic: the header's spelling

        final int code;

        Status(int code) {
            this.code = code;
        }

        static Optional<Status> of(int code) {
            return Arrays.stream(values()).filter(s -> s.code == code).findFirst();
        }

        static String nameOf(int code) {
            return of(code).map(Enum::name).orElse("unknown status");
        }
    }

    /**
     * ov_common.h, {@code ov_element_type_e} (an implicit-numbering enum starting at
     * {@code UNDEFINED = 0U}). Only the prefix up to {@code U1} is named here: it is identical in
     * every 2022.1..2025 header, while later releases insert {@code U2}, {@code U3}, {@code U6}
     * after {@code U1} and so renumber every type from {@code U4} on. Codes past {@code U1} are
     * therefore version-dependent and reported as numbers only.
     */
    enum ElementType {
        UNDEFINED(0, 0), DYNAMIC(1, 0), BOOLEAN(2, 1), BF16(3, 2), F16(4, 2), F32(5, 4), F64(6, 8),
        I4(7, 0), I8(8, 1), I16(9, 2), I32(10, 4), I64(11, 8), U1(12, 0);

        final int code;
        /** Bytes per element, 0 for sub-byte and non-data types. */
        final int bytes;

        ElementType(int code, int bytes) {
            this.code = code;
            this.bytes = bytes;
        }

        static Optional<ElementType> of(int code) {
            return Arrays.stream(values()).filter(t -> t.code == code).findFirst();
        }

        static String nameOf(int code) {
            return of(code).map(t -> t.name().toLowerCase()).orElse("element type #" + code);
        }
    }

    // ---- bound functions ------------------------------------------------------------------

    private static final Linker LINKER = Linker.nativeLinker();
    private static final FunctionDescriptor STATUS_PTR = FunctionDescriptor.of(JAVA_INT, ADDRESS);
    private static final FunctionDescriptor VOID_PTR = FunctionDescriptor.ofVoid(ADDRESS);

    private final SymbolLookup lookup;
    private final MemorySegment compileModelAddress;
    /** ov_core_compile_model handles by number of variadic property arguments. */
    private final Map<Integer, MethodHandle> compileModelByArgs = new ConcurrentHashMap<>();

    // ov_core.h
    private final MethodHandle getOpenvinoVersion;   // ov_status_e ov_get_openvino_version(ov_version_t* version)
    private final MethodHandle versionFree;          // void ov_version_free(ov_version_t* version)
    private final MethodHandle coreCreate;           // ov_status_e ov_core_create(ov_core_t** core)
    private final MethodHandle coreFree;             // void ov_core_free(ov_core_t* core)
    private final MethodHandle coreReadModel;        // ov_status_e ov_core_read_model(const ov_core_t*, const char* model_path, const char* bin_path, ov_model_t** model)
    // ov_common.h
    private final MethodHandle getErrorInfo;         // const char* ov_get_error_info(ov_status_e status)
    private final MethodHandle getLastErrMsg;        // const char* ov_get_last_err_msg()  (null when the library predates it; result is ov_free'd)
    private final MethodHandle free;                 // void ov_free(const char* content)
    // ov_model.h
    private final MethodHandle modelFree;            // void ov_model_free(ov_model_t* model)
    private final MethodHandle modelInputsSize;      // ov_status_e ov_model_inputs_size(const ov_model_t*, size_t* input_size)
    private final MethodHandle modelOutputsSize;     // ov_status_e ov_model_outputs_size(const ov_model_t*, size_t* output_size)
    private final MethodHandle modelConstInputByIndex;  // ov_status_e ov_model_const_input_by_index(const ov_model_t*, const size_t index, ov_output_const_port_t** input_port)
    private final MethodHandle modelConstOutputByIndex; // ov_status_e ov_model_const_output_by_index(const ov_model_t*, const size_t index, ov_output_const_port_t** output_port)
    // ov_node.h
    private final MethodHandle portGetAnyName;       // ov_status_e ov_port_get_any_name(const ov_output_const_port_t*, char** tensor_name)
    private final MethodHandle portGetPartialShape;  // ov_status_e ov_port_get_partial_shape(const ov_output_const_port_t*, ov_partial_shape_t* partial_shape)
    private final MethodHandle portGetElementType;   // ov_status_e ov_port_get_element_type(const ov_output_const_port_t*, ov_element_type_e* tensor_type)
    private final MethodHandle outputConstPortFree;  // void ov_output_const_port_free(ov_output_const_port_t* port)
    // ov_partial_shape.h
    private final MethodHandle partialShapeFree;     // void ov_partial_shape_free(ov_partial_shape_t* partial_shape)
    // ov_shape.h
    private final MethodHandle shapeCreate;          // ov_status_e ov_shape_create(ov_shape_t* shape, int64_t rank, int64_t* dims)
    private final MethodHandle shapeFree;            // ov_status_e ov_shape_free(ov_shape_t* shape)
    // ov_compiled_model.h
    private final MethodHandle compiledModelCreateInferRequest; // ov_status_e ov_compiled_model_create_infer_request(const ov_compiled_model_t*, ov_infer_request_t**)
    private final MethodHandle compiledModelFree;    // void ov_compiled_model_free(ov_compiled_model_t* compiled_model)
    // ov_infer_request.h
    private final MethodHandle inferRequestSetTensor; // ov_status_e ov_infer_request_set_tensor(ov_infer_request_t*, const char* tensor_name, const ov_tensor_t* tensor)
    private final MethodHandle inferRequestInfer;    // ov_status_e ov_infer_request_infer(ov_infer_request_t* infer_request)
    private final MethodHandle inferRequestFree;     // void ov_infer_request_free(ov_infer_request_t* infer_request)
    // ov_tensor.h
    private final MethodHandle tensorCreateFromHostPtr; // ov_status_e ov_tensor_create_from_host_ptr(const ov_element_type_e type, const ov_shape_t shape, void* host_ptr, ov_tensor_t** tensor)
    private final MethodHandle tensorFree;           // void ov_tensor_free(ov_tensor_t* tensor)

    /**
     * Binds every function this engine uses.
     *
     * @throws OpenVinoException listing the missing functions when the library is not an OpenVINO
     *     2023.1+ C API (the {@code ov_port_*} / {@code ov_model_const_*} functions appeared then)
     */
    OvApi(SymbolLookup lookup) {
        this.lookup = lookup;
        List<String> missing = new ArrayList<>();
        getOpenvinoVersion = bind(missing, "ov_get_openvino_version", STATUS_PTR);
        versionFree = bind(missing, "ov_version_free", VOID_PTR);
        coreCreate = bind(missing, "ov_core_create", STATUS_PTR);
        coreFree = bind(missing, "ov_core_free", VOID_PTR);
        coreReadModel = bind(missing, "ov_core_read_model", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        getErrorInfo = bind(missing, "ov_get_error_info", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        free = bind(missing, "ov_free", VOID_PTR);
        modelFree = bind(missing, "ov_model_free", VOID_PTR);
        modelInputsSize = bind(missing, "ov_model_inputs_size", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        modelOutputsSize = bind(missing, "ov_model_outputs_size", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        modelConstInputByIndex = bind(missing, "ov_model_const_input_by_index", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        modelConstOutputByIndex = bind(missing, "ov_model_const_output_by_index", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        portGetAnyName = bind(missing, "ov_port_get_any_name", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        portGetPartialShape = bind(missing, "ov_port_get_partial_shape", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        portGetElementType = bind(missing, "ov_port_get_element_type", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        outputConstPortFree = bind(missing, "ov_output_const_port_free", VOID_PTR);
        partialShapeFree = bind(missing, "ov_partial_shape_free", VOID_PTR);
        shapeCreate = bind(missing, "ov_shape_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        shapeFree = bind(missing, "ov_shape_free", STATUS_PTR);
        compiledModelCreateInferRequest = bind(missing, "ov_compiled_model_create_infer_request", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        compiledModelFree = bind(missing, "ov_compiled_model_free", VOID_PTR);
        inferRequestSetTensor = bind(missing, "ov_infer_request_set_tensor", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        inferRequestInfer = bind(missing, "ov_infer_request_infer", STATUS_PTR);
        inferRequestFree = bind(missing, "ov_infer_request_free", VOID_PTR);
        tensorCreateFromHostPtr = bind(missing, "ov_tensor_create_from_host_ptr", FunctionDescriptor.of(JAVA_INT, JAVA_INT, SHAPE, ADDRESS, ADDRESS));
        tensorFree = bind(missing, "ov_tensor_free", VOID_PTR);
        compileModelAddress = lookup.find("ov_core_compile_model").orElse(null);
        if (compileModelAddress == null) {
            missing.add("ov_core_compile_model");
        }
        if (!missing.isEmpty()) {
            throw new OpenVinoException("the library lacks OpenVINO C API functions " + missing
                    + "; OpenVINO 2023.1 or newer is required", null);
        }
        // Added in 2023.x; older libraries still work, with the generic status text as the message.
        getLastErrMsg = lookup.find("ov_get_last_err_msg")
                .map(a -> LINKER.downcallHandle(a, FunctionDescriptor.of(ADDRESS)))
                .orElse(null);
    }

    private MethodHandle bind(List<String> missing, String name, FunctionDescriptor descriptor) {
        Optional<MemorySegment> address = lookup.find(name);
        if (address.isEmpty()) {
            missing.add(name);
            return null;
        }
        return LINKER.downcallHandle(address.get(), descriptor);
    }

    /**
     * ov_core.h: {@code ov_status_e ov_core_compile_model(const ov_core_t* core, const ov_model_t* model,
     * const char* device_name, const size_t property_args_size, ov_compiled_model_t** compiled_model, ...)}.
     * A C variadic function: the FFM linker needs the promoted variadic argument layouts at link time,
     * so one handle is linked per argument count, with {@link Linker.Option#firstVariadicArg} at 5.
     * Every variadic argument here is a {@code char*} (key, value, key, value, ...).
     */
    static FunctionDescriptor compileModelDescriptor(int propertyArgs) {
        MemoryLayout[] args = new MemoryLayout[5 + propertyArgs];
        args[0] = ADDRESS;   // const ov_core_t* core
        args[1] = ADDRESS;   // const ov_model_t* model
        args[2] = ADDRESS;   // const char* device_name
        args[3] = JAVA_LONG; // const size_t property_args_size
        args[4] = ADDRESS;   // ov_compiled_model_t** compiled_model
        Arrays.fill(args, 5, args.length, ADDRESS);
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    // ---- status handling ------------------------------------------------------------------

    /** Throws an {@link OpenVinoException} for a non-OK {@code status} of {@code function}. */
    void check(int status, String function) {
        if (status != Status.OK.code) {
            throw new OpenVinoException(function, status, lastError(status));
        }
    }

    /**
     * {@code ov_get_last_err_msg()} when available and non-empty, else {@code ov_get_error_info(status)}.
     *
     * <p>The header does not say so, but {@code ov_get_last_err_msg} returns a fresh copy
     * ({@code new char[]}, src/bindings/c/src/ov_core.cpp) of one process-wide message, so the copy
     * is released with {@code ov_free}. Being process-wide, under concurrent failures the message
     * may belong to another thread's call; it is never cleared, so it is only read after a failure.
     */
    String lastError(int status) {
        try {
            if (getLastErrMsg != null) {
                MemorySegment copy = (MemorySegment) getLastErrMsg.invokeExact();
                if (!copy.equals(MemorySegment.NULL)) {
                    String msg = cString(copy);
                    free.invokeExact(copy);
                    if (!msg.isBlank()) {
                        return msg;
                    }
                }
            }
            // a static string, not to be freed (ov_common.cpp: error_infos[])
            return cString((MemorySegment) getErrorInfo.invokeExact(status));
        } catch (Throwable t) {
            return null;
        }
    }

    /** Reads a NUL-terminated string the library owns (null for a NULL pointer). */
    static String cString(MemorySegment p) {
        return p == null || p.equals(MemorySegment.NULL) ? null : p.reinterpret(Long.MAX_VALUE).getString(0);
    }

    private static OpenVinoException rethrow(String function, Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new OpenVinoException("calling " + function + " failed: " + t, t);
    }

    // ---- typed wrappers -------------------------------------------------------------------

    /** {@code ov_get_openvino_version} then {@code ov_version_free}: {buildNumber, description}. */
    String[] version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(VERSION);
            check((int) getOpenvinoVersion.invokeExact(v), "ov_get_openvino_version");
            try {
                return new String[] {cString(v.get(ADDRESS, VERSION_BUILD)), cString(v.get(ADDRESS, VERSION_DESCRIPTION))};
            } finally {
                versionFree.invokeExact(v);
            }
        } catch (Throwable t) {
            throw rethrow("ov_get_openvino_version", t);
        }
    }

    MemorySegment coreCreate() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) coreCreate.invokeExact(out), "ov_core_create");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow("ov_core_create", t);
        }
    }

    void coreFree(MemorySegment core) {
        voidCall(coreFree, core, "ov_core_free");
    }

    /** Reads an IR / ONNX model; {@code bin_path} NULL (unused for ONNX, derived from the .xml for IR). */
    MemorySegment readModel(MemorySegment core, String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) coreReadModel.invokeExact(core, arena.allocateFrom(path), MemorySegment.NULL, out), "ov_core_read_model");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow("ov_core_read_model", t);
        }
    }

    /** Compiles {@code model} for {@code device} with (key, value) string properties. */
    MemorySegment compileModel(MemorySegment core, MemorySegment model, String device, List<Map.Entry<String, String>> properties) {
        int n = 2 * properties.size();
        MethodHandle h = compileModelByArgs.computeIfAbsent(n, k -> LINKER.downcallHandle(compileModelAddress,
                compileModelDescriptor(k), Linker.Option.firstVariadicArg(5)));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            Object[] args = new Object[5 + n];
            args[0] = core;
            args[1] = model;
            args[2] = arena.allocateFrom(device);
            args[3] = (long) n;
            args[4] = out;
            for (int i = 0; i < properties.size(); i++) {
                args[5 + 2 * i] = arena.allocateFrom(properties.get(i).getKey());
                args[6 + 2 * i] = arena.allocateFrom(properties.get(i).getValue());
            }
            check((int) h.invokeWithArguments(args), "ov_core_compile_model");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow("ov_core_compile_model", t);
        }
    }

    void modelFree(MemorySegment model) {
        voidCall(modelFree, model, "ov_model_free");
    }

    long modelInputsSize(MemorySegment model) {
        return sizeCall(modelInputsSize, model, "ov_model_inputs_size");
    }

    long modelOutputsSize(MemorySegment model) {
        return sizeCall(modelOutputsSize, model, "ov_model_outputs_size");
    }

    /** A tensor's name, element type and partial shape, read from one of a model's ports. */
    record PortInfo(String name, int elementType, long[] dims) {
        /** {@code dims} is null for a dynamic rank; a dynamic dimension is -1. */
        String describe() {
            return name + " " + ElementType.nameOf(elementType) + (dims == null ? "[?]" : Arrays.toString(dims).replace("-1", "?"));
        }
    }

    /** Reads input ({@code output == false}) or output port {@code index} of {@code model}. */
    PortInfo port(MemorySegment model, long index, boolean output) {
        String fn = output ? "ov_model_const_output_by_index" : "ov_model_const_input_by_index";
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) (output ? modelConstOutputByIndex : modelConstInputByIndex).invokeExact(model, index, out), fn);
            MemorySegment port = out.get(ADDRESS, 0);
            try {
                MemorySegment namePtr = arena.allocate(ADDRESS);
                check((int) portGetAnyName.invokeExact(port, namePtr), "ov_port_get_any_name");
                MemorySegment nameC = namePtr.get(ADDRESS, 0);
                String name = cString(nameC);
                free.invokeExact(nameC);  // the name was allocated by the library for us (ov_free)
                MemorySegment type = arena.allocate(JAVA_INT);
                check((int) portGetElementType.invokeExact(port, type), "ov_port_get_element_type");
                MemorySegment ps = arena.allocate(PARTIAL_SHAPE);
                check((int) portGetPartialShape.invokeExact(port, ps), "ov_port_get_partial_shape");
                try {
                    return new PortInfo(name, type.get(JAVA_INT, 0), partialShapeDims(ps));
                } finally {
                    partialShapeFree.invokeExact(ps);
                }
            } finally {
                outputConstPortFree.invokeExact(port);
            }
        } catch (Throwable t) {
            throw rethrow(fn, t);
        }
    }

    /**
     * The dimensions of an {@code ov_partial_shape_t}: null for a dynamic rank, -1 for a dynamic
     * dimension. A dimension (and the rank, itself an {@code ov_dimension_t}) is static when its
     * {@code min == max >= 0}; a dynamic one is an interval, {@code max == -1} meaning unbounded.
     */
    static long[] partialShapeDims(MemorySegment ps) {
        long rankMin = ps.get(JAVA_LONG, PSHAPE_RANK + DIM_MIN);
        long rankMax = ps.get(JAVA_LONG, PSHAPE_RANK + DIM_MAX);
        if (rankMin != rankMax || rankMin < 0) {
            return null;
        }
        MemorySegment dims = ps.get(ADDRESS, PSHAPE_DIMS).reinterpret(rankMin * DIMENSION.byteSize());
        long[] out = new long[(int) rankMin];
        for (int i = 0; i < out.length; i++) {
            long min = dims.get(JAVA_LONG, i * DIMENSION.byteSize() + DIM_MIN);
            long max = dims.get(JAVA_LONG, i * DIMENSION.byteSize() + DIM_MAX);
            out[i] = min == max && min >= 0 ? min : -1;
        }
        return out;
    }

    /** Writes an {@code ov_shape_t} whose {@code dims} point into {@code arena} (no ov_shape_create/free needed). */
    static MemorySegment shape(Arena arena, long... dims) {
        MemorySegment s = arena.allocate(SHAPE);
        s.set(JAVA_LONG, SHAPE_RANK, dims.length);
        s.set(ADDRESS, SHAPE_DIMS, arena.allocateFrom(JAVA_LONG, dims));
        return s;
    }

    /** {@code ov_shape_create} then {@code ov_shape_free}: the library's own shape object (round trip check). */
    long[] shapeRoundTrip(long... dims) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(SHAPE);
            check((int) shapeCreate.invokeExact(s, (long) dims.length, arena.allocateFrom(JAVA_LONG, dims)), "ov_shape_create");
            try {
                long rank = s.get(JAVA_LONG, SHAPE_RANK);
                return s.get(ADDRESS, SHAPE_DIMS).reinterpret(rank * 8).toArray(JAVA_LONG);
            } finally {
                check((int) shapeFree.invokeExact(s), "ov_shape_free");
            }
        } catch (Throwable t) {
            throw rethrow("ov_shape_create", t);
        }
    }

    MemorySegment createInferRequest(MemorySegment compiledModel) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) compiledModelCreateInferRequest.invokeExact(compiledModel, out), "ov_compiled_model_create_infer_request");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow("ov_compiled_model_create_infer_request", t);
        }
    }

    void compiledModelFree(MemorySegment compiledModel) {
        voidCall(compiledModelFree, compiledModel, "ov_compiled_model_free");
    }

    void inferRequestFree(MemorySegment request) {
        voidCall(inferRequestFree, request, "ov_infer_request_free");
    }

    /**
     * Wraps {@code host} (not copied, not owned) as a tensor of {@code type} and {@code shape}, and
     * sets it on {@code request} under {@code name} (an input or an output). The C tensor object is
     * freed right away: the request keeps its own reference to the underlying ov::Tensor, and the
     * host memory must stay valid until the request is freed or given another tensor of that name.
     *
     * @param scratch arena for the shape and out-parameter (the call's duration)
     */
    void setHostTensor(Arena scratch, MemorySegment request, MemorySegment name, int type, MemorySegment host, long... dims) {
        try {
            MemorySegment out = scratch.allocate(ADDRESS);
            check((int) tensorCreateFromHostPtr.invokeExact(type, shape(scratch, dims), host, out), "ov_tensor_create_from_host_ptr");
            MemorySegment tensor = out.get(ADDRESS, 0);
            try {
                check((int) inferRequestSetTensor.invokeExact(request, name, tensor), "ov_infer_request_set_tensor("
                        + cString(name) + ")");
            } finally {
                tensorFree.invokeExact(tensor);
            }
        } catch (Throwable t) {
            throw rethrow("ov_infer_request_set_tensor", t);
        }
    }

    void infer(MemorySegment request) {
        try {
            check((int) inferRequestInfer.invokeExact(request), "ov_infer_request_infer");
        } catch (Throwable t) {
            throw rethrow("ov_infer_request_infer", t);
        }
    }

    /** Reads an exported {@code const char*} variable (e.g. {@code ov_property_key_cache_dir}), empty if absent. */
    Optional<String> exportedString(String symbol) {
        return lookup.find(symbol).map(a -> cString(a.reinterpret(ValueLayout.ADDRESS.byteSize()).get(ADDRESS, 0)));
    }

    private long sizeCall(MethodHandle h, MemorySegment arg, String function) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) h.invokeExact(arg, out), function);
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(function, t);
        }
    }

    private static void voidCall(MethodHandle h, MemorySegment arg, String function) {
        if (arg == null || arg.equals(MemorySegment.NULL)) {
            return;
        }
        try {
            h.invokeExact(arg);
        } catch (Throwable t) {
            throw rethrow(function, t);
        }
    }
}
