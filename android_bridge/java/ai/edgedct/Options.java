package ai.edgedct;

/**
 * How to build an {@link EdgeDctClassifier}: threads, accelerator, and which categories to return.
 *
 * <pre>{@code
 * Options options = Options.builder().setNumThreads(2).setMaxResults(3).build();
 * }</pre>
 */
public final class Options {
  /** Where LiteRT runs the model. */
  public enum Accelerator {
    /** CPU (XNNPACK). */
    CPU,
    /** LiteRT's GPU accelerator; creation fails with {@link EdgeDctException#RUNTIME} without one. */
    GPU
  }

  private final int numThreads;
  private final Accelerator accelerator;
  private final int maxResults;
  private final float scoreThreshold;

  private Options(Builder b) {
    numThreads = b.numThreads;
    accelerator = b.accelerator;
    maxResults = b.maxResults;
    scoreThreshold = b.scoreThreshold;
  }

  /** CPU, LiteRT's default thread count, top 5, no threshold. */
  public static Options defaults() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** CPU threads; 0 leaves LiteRT's default. */
  public int numThreads() {
    return numThreads;
  }

  public Accelerator accelerator() {
    return accelerator;
  }

  /** Categories returned, best first; -1 for all. */
  public int maxResults() {
    return maxResults;
  }

  /** Categories scoring below this are dropped. */
  public float scoreThreshold() {
    return scoreThreshold;
  }

  /** Builder of {@link Options}; every setter checks its argument. */
  public static final class Builder {
    private int numThreads = 0;
    private Accelerator accelerator = Accelerator.CPU;
    private int maxResults = 5;
    private float scoreThreshold = 0f;

    private Builder() {}

    public Builder setNumThreads(int numThreads) {
      if (numThreads < 0 || numThreads > 256) {
        throw new IllegalArgumentException("numThreads must be 0..256, not " + numThreads);
      }
      this.numThreads = numThreads;
      return this;
    }

    public Builder setAccelerator(Accelerator accelerator) {
      if (accelerator == null) throw new IllegalArgumentException("accelerator is null");
      this.accelerator = accelerator;
      return this;
    }

    public Builder setMaxResults(int maxResults) {
      if (maxResults == 0 || maxResults < -1) {
        throw new IllegalArgumentException("maxResults must be positive or -1, not " + maxResults);
      }
      this.maxResults = maxResults;
      return this;
    }

    public Builder setScoreThreshold(float scoreThreshold) {
      if (Float.isNaN(scoreThreshold)) throw new IllegalArgumentException("scoreThreshold is NaN");
      this.scoreThreshold = scoreThreshold;
      return this;
    }

    public Options build() {
      return new Options(this);
    }
  }
}
