package dev.tandem.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.generation.FinishReason;
import dev.tandem.generation.GenerationListener;
import dev.tandem.generation.GenerationRequest;
import dev.tandem.generation.GenerationResult;
import dev.tandem.generation.TokenLogprob;
import dev.tandem.serving.AdmissionControl;
import dev.tandem.serving.DecodingPolicy;
import dev.tandem.serving.GenerationService;
import dev.tandem.serving.ServedModel;
import io.vertx.core.http.HttpServerResponse;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import java.io.IOException;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * A generation streamed as Server-Sent Events: the endpoint says what each event looks like, this
 * runs the generation, writes the events as text becomes final, and stops the generation (freeing
 * its slot and caches) when the client goes away.
 */
final class SseStream {
    private static final Logger LOG = Logger.getLogger(SseStream.class);

    /** The events of one endpoint's stream format. */
    interface Events {
        /** Sent before any text (a chat stream's role delta, an echoed prompt); null for none. */
        Object opening();

        /** The event(s) for a piece of text: one object, a list of objects, or null for none. */
        Object text(String text, List<TokenLogprob> logprobs);

        /** The closing event(s): one object or a list. */
        Object end(GenerationResult result);

        /** The usage event when {@code stream_options.include_usage}; null when the format has none. */
        Object usage(GenerationResult result);

        /** Whether the format ends with {@code data: [DONE]}. */
        default boolean done() {
            return true;
        }

        /**
         * The event that reports a failure after the stream has begun (the status line has gone out):
         * OpenAI-style servers (vLLM) send an {@code error} object as the last event.
         */
        default Object error(String message) {
            return ErrorBody.of(message, "server_error", null, "generation_failed");
        }
    }

    private SseStream() {
    }

    static Response response(GenerationService generation, AdmissionControl.Permit permit, ServedModel model,
                             GenerationRequest request, DecodingPolicy.Decision decision, HttpServerResponse http,
                             ObjectMapper json, Events events, boolean includeUsage) {
        StreamingOutput body = out -> {
            SseWriter sse = new SseWriter(out, json);
            Listener listener = new Listener(sse, http, events);
            try {
                Object opening = events.opening();
                if (opening != null) {
                    sse.event(opening);
                }
                GenerationResult result = generation.generate(permit, model, request, decision, listener);
                if (result.finishReason() == FinishReason.CANCELLED || listener.broken) {
                    LOG.debugf("client went away after %d tokens", result.completionTokens());
                    return;
                }
                send(sse, events.end(result));
                Object usage = includeUsage ? events.usage(result) : null;
                if (usage != null) {
                    sse.event(usage);
                }
                if (events.done()) {
                    sse.done();
                }
            } catch (IOException e) {
                LOG.debugf("stream closed: %s", e.getMessage());
            } catch (RuntimeException e) {  // the status line has gone out: say so in the stream, then end it
                LOG.error("generation failed mid-stream", e);
                String message = e instanceof dev.tandem.generation.InvalidLogitsException
                        ? "generation failed: " + e.getMessage() + "; this is a fault of the served model, not of the request"
                        : e instanceof dev.tandem.engine.EngineException && e.getMessage() != null
                                && e.getMessage().contains("closed") ? "generation stopped: the server is shutting down"
                                : "generation failed: internal error";
                try {
                    sse.event(events.error(message));
                    if (events.done()) {
                        sse.done();
                    }
                } catch (IOException gone) {
                    LOG.debugf("stream closed: %s", gone.getMessage());
                }
            } finally {
                permit.close();  // generate() closes it too; closing is idempotent
            }
        };
        return Response.ok(body).type("text/event-stream").header("Cache-Control", "no-cache")
                .header("X-Accel-Buffering", "no").header("X-Decoding-Mode", decision.mode())
                .header("X-Experiment-Arm", decision.arm()).build();
    }

    private static void send(SseWriter sse, Object events) throws IOException {
        if (events instanceof List<?> list) {
            for (Object e : list) {
                sse.event(e);
            }
        } else if (events != null) {
            sse.event(events);
        }
    }

    private static final class Listener implements GenerationListener {
        private final SseWriter sse;
        private final HttpServerResponse http;
        private final Events events;
        private volatile boolean broken;

        Listener(SseWriter sse, HttpServerResponse http, Events events) {
            this.sse = sse;
            this.http = http;
            this.events = events;
        }

        @Override
        public void onText(String text, List<TokenLogprob> logprobs) {
            if (broken) {
                return;
            }
            try {
                send(sse, events.text(text, logprobs));
            } catch (IOException e) {
                broken = true;
            }
        }

        @Override
        public boolean isCancelled() {
            return broken || http != null && http.closed();
        }
    }
}
