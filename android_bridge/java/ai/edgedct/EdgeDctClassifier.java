package ai.edgedct;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Classifies JPEGs straight from their DCT coefficients with an edge_dct {@code .tflite} bundle.
 *
 * <p>The bundle carries its model contract (InputSpec v1: DCT grid, resize, channels,
 * normalization) and its labels as {@code edge_dct} metadata; the native code reads them, checks
 * them against the model's inputs, decodes each JPEG with the edge_dct C core (the same code as
 * the Python SDK) straight into LiteRT's input buffers, runs the model with LiteRT's
 * CompiledModel API and returns softmax scores, best first (ties to the lower index), exactly as
 * {@code edge_dct.Classifier} does.
 *
 * <pre>{@code
 * try (EdgeDctClassifier clf = EdgeDctClassifier.create(path, Options.defaults())) {
 *   Category top = clf.classify(jpegBytes).get(0);
 * }
 * }</pre>
 *
 * <p>Thread-safe: calls on one instance are serialized. Errors throw {@link EdgeDctException};
 * nothing a JPEG or model file contains crashes the process.
 */
public final class EdgeDctClassifier implements AutoCloseable {
  static {
    NativeLoader.load();
  }

  private long handle;
  private final List<String> labels;
  private final int[] indices;
  private final double[] scores;

  private EdgeDctClassifier(long handle) {
    this.handle = handle;
    try {
      this.labels = Collections.unmodifiableList(splitLabels(nativeLabels(handle)));
      int n = nativeMaxCategories(handle);
      this.indices = new int[n];
      this.scores = new double[n];
    } catch (RuntimeException | Error e) {
      nativeFree(handle);
      this.handle = 0;
      throw e;
    }
  }

  /**
   * Loads a bundle from a file.
   *
   * @throws EdgeDctException the file is unreadable, not an edge_dct bundle, or LiteRT refuses it
   */
  public static EdgeDctClassifier create(String modelPath, Options options) {
    if (modelPath == null) throw new IllegalArgumentException("modelPath is null");
    Options o = options != null ? options : Options.defaults();
    return new EdgeDctClassifier(
        nativeCreateFromFile(
            modelPath, o.numThreads(), o.accelerator().ordinal(), o.maxResults(), o.scoreThreshold()));
  }

  /**
   * Loads a bundle from memory (for example a memory-mapped asset): the bytes between the
   * buffer's position and limit, copied.
   */
  public static EdgeDctClassifier create(ByteBuffer model, Options options) {
    if (model == null) throw new IllegalArgumentException("model is null");
    Options o = options != null ? options : Options.defaults();
    int threads = o.numThreads(), accel = o.accelerator().ordinal(), max = o.maxResults();
    float threshold = o.scoreThreshold();
    if (model.isDirect()) {
      return new EdgeDctClassifier(
          nativeCreateFromDirect(model, model.position(), model.remaining(), threads, accel, max,
              threshold));
    }
    byte[] bytes = copyRemaining(model);
    return new EdgeDctClassifier(
        nativeCreateFromBytes(bytes, 0, bytes.length, threads, accel, max, threshold));
  }

  /** Class names from the bundle, index-aligned with the model's output. */
  public List<String> labels() {
    return labels;
  }

  /**
   * Classifies one JPEG.
   *
   * @return categories, best first (at most {@link Options#maxResults()})
   * @throws EdgeDctException for an invalid or unsupported JPEG, or a closed classifier
   */
  public List<Category> classify(byte[] jpeg) {
    if (jpeg == null) throw new IllegalArgumentException("jpeg is null");
    synchronized (this) {
      int n = nativeClassifyBytes(checkedHandle(), jpeg, 0, jpeg.length, indices, scores);
      return results(n);
    }
  }

  /** Classifies the JPEG between the buffer's position and limit (the position is unchanged). */
  public List<Category> classify(ByteBuffer jpeg) {
    if (jpeg == null) throw new IllegalArgumentException("jpeg is null");
    if (!jpeg.isDirect()) {
      if (jpeg.hasArray()) {
        synchronized (this) {
          int n = nativeClassifyBytes(checkedHandle(), jpeg.array(),
              jpeg.arrayOffset() + jpeg.position(), jpeg.remaining(), indices, scores);
          return results(n);
        }
      }
      return classify(copyRemaining(jpeg));
    }
    synchronized (this) {
      int n = nativeClassifyDirect(checkedHandle(), jpeg, jpeg.position(), jpeg.remaining(),
          indices, scores);
      return results(n);
    }
  }

  /** Frees the native classifier; safe to call more than once. */
  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeFree(handle);
      handle = 0;
    }
  }

  private long checkedHandle() {
    if (handle == 0) throw new EdgeDctException("the classifier is closed", EdgeDctException.BAD_ARGUMENT);
    return handle;
  }

  private List<Category> results(int n) {
    List<Category> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      out.add(new Category(indices[i], labels.get(indices[i]), (float) scores[i]));
    }
    return out;
  }

  private static byte[] copyRemaining(ByteBuffer b) {
    byte[] bytes = new byte[b.remaining()];
    b.duplicate().get(bytes);
    return bytes;
  }

  private static List<String> splitLabels(byte[] blob) {
    List<String> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < blob.length; i++) {
      if (blob[i] == 0) {
        out.add(new String(blob, start, i - start, StandardCharsets.UTF_8));
        start = i + 1;
      }
    }
    return out;
  }

  // Native side: android_bridge/src/edct_jni.c.
  private static native long nativeCreateFromFile(
      String path, int numThreads, int accelerator, int maxResults, float scoreThreshold);

  private static native long nativeCreateFromBytes(byte[] model, int offset, int length,
      int numThreads, int accelerator, int maxResults, float scoreThreshold);

  private static native long nativeCreateFromDirect(ByteBuffer model, int offset, int length,
      int numThreads, int accelerator, int maxResults, float scoreThreshold);

  private static native byte[] nativeLabels(long handle);

  private static native int nativeMaxCategories(long handle);

  private static native int nativeClassifyBytes(
      long handle, byte[] jpeg, int offset, int length, int[] indices, double[] scores);

  private static native int nativeClassifyDirect(
      long handle, ByteBuffer jpeg, int offset, int length, int[] indices, double[] scores);

  private static native void nativeFree(long handle);
}
