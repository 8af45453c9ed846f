package dev.tandem.engine.openvino;

import dev.tandem.engine.EngineException;

/**
 * A failed OpenVINO C API call: the function, its {@code ov_status_e} and OpenVINO's own message
 * ({@code ov_get_last_err_msg}, which carries the C++ exception text).
 */
public class OpenVinoException extends EngineException {
    private final int statusCode;
    private final String statusName;
    private final String detail;

    OpenVinoException(String function, int statusCode, String detail) {
        super(function + " failed with " + OvApi.Status.nameOf(statusCode) + " (" + statusCode + ")"
                + (detail == null || detail.isBlank() ? "" : ": " + detail.strip()));
        this.statusCode = statusCode;
        this.statusName = OvApi.Status.nameOf(statusCode);
        this.detail = detail;
    }

    OpenVinoException(String message, Throwable cause) {
        super(message, cause);
        this.statusCode = 0;
        this.statusName = null;
        this.detail = null;
    }

    /** The raw {@code ov_status_e} value, 0 when the failure was not a status code. */
    public int statusCode() {
        return statusCode;
    }

    /** The {@code ov_status_e} constant's name (e.g. {@code GENERAL_ERROR}), null when not a status failure. */
    public String statusName() {
        return statusName;
    }

    /** OpenVINO's last error message for the failed call, possibly null. */
    public String detail() {
        return detail;
    }
}
