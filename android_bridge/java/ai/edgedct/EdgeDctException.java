package ai.edgedct;

/**
 * An error from edge_dct's native code: a JPEG or model it refuses, or a runtime failure.
 *
 * <p>Unchecked, like MediaPipe's {@code MediaPipeException}. {@link #status()} tells the kind
 * apart; the message names the reason (and, for models, the bad metadata field).
 */
public class EdgeDctException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Malformed or corrupt JPEG data. */
  public static final int INVALID_JPEG = 1;
  /** A valid JPEG outside what the decoder covers (12-bit, lossless, CMYK...). */
  public static final int UNSUPPORTED_JPEG = 2;
  /** The image has more pixels than the decoder's limit. */
  public static final int IMAGE_TOO_LARGE = 3;
  /** Native memory ran out. */
  public static final int OUT_OF_MEMORY = 4;
  /** An argument or option is inconsistent (or the classifier is closed). */
  public static final int BAD_ARGUMENT = 5;
  /** The model is corrupt, not an edge_dct bundle, or disagrees with its InputSpec. */
  public static final int INVALID_MODEL = 10;
  /** LiteRT failed at run time (for example no usable GPU). */
  public static final int RUNTIME = 11;
  /** A file could not be read. */
  public static final int IO = 12;

  private final int status;

  public EdgeDctException(String message, int status) {
    super(message);
    this.status = status;
  }

  /** One of the constants of this class. */
  public int status() {
    return status;
  }

  /** True for the errors a JPEG can cause (invalid, unsupported, too large). */
  public boolean isImageError() {
    return status == INVALID_JPEG || status == UNSUPPORTED_JPEG || status == IMAGE_TOO_LARGE;
  }
}
