package ai.edgedct;

import java.util.Locale;
import java.util.Objects;

/** One class of a result: its index in the model's output, its label, its softmax score. */
public final class Category {
  private final int index;
  private final String label;
  private final float score;

  public Category(int index, String label, float score) {
    this.index = index;
    this.label = Objects.requireNonNull(label, "label");
    this.score = score;
  }

  /** Position in the model's output (and in the bundle's labels). */
  public int index() {
    return index;
  }

  /** Class name from the bundle's metadata. */
  public String label() {
    return label;
  }

  /** Softmax probability, 0..1. */
  public float score() {
    return score;
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof Category)) return false;
    Category c = (Category) o;
    return index == c.index && label.equals(c.label) && Float.compare(score, c.score) == 0;
  }

  @Override
  public int hashCode() {
    return Objects.hash(index, label, score);
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "Category(index=%d, label=%s, score=%.6f)", index, label, score);
  }
}
