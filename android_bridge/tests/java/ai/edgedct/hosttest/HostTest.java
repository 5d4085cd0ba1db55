package ai.edgedct.hosttest;

import ai.edgedct.Category;
import ai.edgedct.EdgeDctClassifier;
import ai.edgedct.EdgeDctException;
import ai.edgedct.Options;
import java.io.IOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Host test of the Java API over the real native library (no mocks): a main that fails loudly.
 *
 * <pre>
 * java -cp CLASSES -Dai.edgedct.library=LIB ai.edgedct.hosttest.HostTest
 *     MODEL PHOTO_DIR CONFORMANCE_DIR RESULTS_JSON [MUTATIONS] [SEED]
 * </pre>
 *
 * Writes the top-5 of every photo and the latency to RESULTS_JSON; parity with the Python
 * runtime is checked against it by android_bridge/tests/parity.py.
 */
public final class HostTest {
  private static int checks = 0;

  private static void check(boolean ok, String what) {
    checks++;
    if (!ok) throw new AssertionError("FAILED: " + what);
  }

  interface Action {
    void run() throws Exception;
  }

  /** Runs action, which must throw EdgeDctException (with one of the statuses, if given). */
  private static EdgeDctException expectError(String what, Action action, int... statuses) {
    try {
      action.run();
    } catch (EdgeDctException e) {
      check(statuses.length == 0 || Arrays.stream(statuses).anyMatch(s -> s == e.status()),
          what + ": unexpected status " + e.status() + " (" + e.getMessage() + ")");
      check(e.getMessage() != null && !e.getMessage().isEmpty(), what + ": empty message");
      return e;
    } catch (Exception e) {
      throw new AssertionError("FAILED: " + what + ": threw " + e + " instead of EdgeDctException", e);
    }
    throw new AssertionError("FAILED: " + what + ": no exception");
  }

  private static List<Path> jpegs(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile)
          .filter(p -> {
            String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
            return n.endsWith(".jpg") || n.endsWith(".jpeg");
          })
          .sorted()
          .collect(Collectors.toList());
    }
  }

  private static void checkResult(List<Category> r, int max, String what) {
    check(r.size() <= max, what + ": too many categories");
    for (int i = 0; i < r.size(); i++) {
      Category c = r.get(i);
      check(c.score() >= 0f && c.score() <= 1f, what + ": score out of range");
      check(i == 0 || r.get(i - 1).score() >= c.score(), what + ": not sorted");
    }
  }

  private static double median(List<Double> xs) {
    double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    int n = a.length;
    return n % 2 == 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
  }

  private static byte[] mutate(byte[] src, Random rnd) {
    byte[] d = src.clone();
    switch (rnd.nextInt(4)) {
      case 0: // bit flips anywhere
        for (int i = 0, k = 1 + rnd.nextInt(8); i < k; i++) d[rnd.nextInt(d.length)] ^= (byte) (1 << rnd.nextInt(8));
        return d;
      case 1: // truncation
        return Arrays.copyOf(d, rnd.nextInt(d.length));
      case 2: // a run of random bytes
        int at = rnd.nextInt(d.length), len = 1 + rnd.nextInt(64);
        for (int i = at; i < d.length && i < at + len; i++) d[i] = (byte) rnd.nextInt(256);
        return d;
      default: // flips in the headers
        int lim = Math.min(d.length, 1024);
        for (int i = 0, k = 1 + rnd.nextInt(4); i < k; i++) d[rnd.nextInt(lim)] ^= (byte) (1 << rnd.nextInt(8));
        return d;
    }
  }

  private static int indexOf(byte[] hay, String needle) {
    byte[] n = needle.getBytes(StandardCharsets.US_ASCII);
    outer:
    for (int i = 0; i + n.length <= hay.length; i++) {
      for (int j = 0; j < n.length; j++) if (hay[i + j] != n[j]) continue outer;
      return i;
    }
    return -1;
  }

  private static byte[] replace(byte[] model, String from, String to) {
    int at = indexOf(model, from);
    check(at >= 0 && from.length() == to.length(), "model contains " + from);
    byte[] d = model.clone();
    byte[] t = to.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(t, 0, d, at, t.length);
    return d;
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 4) {
      System.err.println("usage: HostTest MODEL PHOTO_DIR CONFORMANCE_DIR RESULTS_JSON [MUTATIONS] [SEED]");
      System.exit(2);
    }
    Path modelPath = Paths.get(args[0]);
    List<Path> photos = jpegs(Paths.get(args[1]));
    List<Path> conformance = jpegs(Paths.get(args[2]));
    Path out = Paths.get(args[3]);
    int mutations = args.length > 4 ? Integer.parseInt(args[4]) : 300;
    long seed = args.length > 5 ? Long.parseLong(args[5]) : 7;
    check(!photos.isEmpty(), "photos found under " + args[1]);
    byte[] model = Files.readAllBytes(modelPath);
    Options one = Options.builder().setNumThreads(1).setMaxResults(5).build();

    StringBuilder json = new StringBuilder("{\n  \"photos\": {\n");
    List<Double> latencies = new ArrayList<>();
    EdgeDctClassifier clf = EdgeDctClassifier.create(modelPath.toString(), one);
    try (EdgeDctClassifier fromBuffer = EdgeDctClassifier.create(ByteBuffer.wrap(model), one)) {
      check(clf.labels().size() == 1000 || !clf.labels().isEmpty(), "labels");
      check(clf.labels().equals(fromBuffer.labels()), "labels from path == from buffer");
      // Warm up (first runs allocate and JIT).
      for (int i = 0; i < 3; i++) clf.classify(Files.readAllBytes(photos.get(0)));
      for (int p = 0; p < photos.size(); p++) {
        Path photo = photos.get(p);
        byte[] jpeg = Files.readAllBytes(photo);
        List<Category> r = clf.classify(jpeg);
        checkResult(r, 5, photo.toString());
        check(r.size() == 5, photo + ": 5 categories");
        // Same answer through every entry point.
        ByteBuffer direct = ByteBuffer.allocateDirect(jpeg.length + 7);
        direct.position(7);
        direct.put(jpeg).position(7);
        check(r.equals(clf.classify(direct)), photo + ": direct buffer");
        check(direct.position() == 7, photo + ": position unchanged");
        byte[] padded = new byte[jpeg.length + 5];
        System.arraycopy(jpeg, 0, padded, 3, jpeg.length);
        check(r.equals(clf.classify(ByteBuffer.wrap(padded, 3, jpeg.length).slice())), photo + ": heap slice");
        check(r.equals(fromBuffer.classify(jpeg)), photo + ": model from buffer");
        List<Double> runs = new ArrayList<>();
        for (int k = 0; k < 5; k++) {
          long t0 = System.nanoTime();
          clf.classify(jpeg);
          runs.add((System.nanoTime() - t0) / 1e6);
        }
        latencies.add(median(runs));
        json.append(String.format(Locale.ROOT, "    \"%s\": {\"indices\": [%s], \"scores\": [%s]}%s\n",
            photo.toString().replace("\\", "\\\\").replace("\"", "\\\""),
            r.stream().map(c -> Integer.toString(c.index())).collect(Collectors.joining(", ")),
            r.stream().map(c -> String.format(Locale.ROOT, "%.9g", c.score())).collect(Collectors.joining(", ")),
            p + 1 < photos.size() ? "," : ""));
      }
    }
    double medianMs = median(latencies);
    json.append(String.format(Locale.ROOT, "  },\n  \"latency_ms\": {\"median\": %.3f, \"photos\": %d}\n}\n",
        medianMs, latencies.size()));
    try (Writer w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
      w.write(json.toString());
    }
    System.out.printf(Locale.ROOT, "photos: %d classified, median %.2f ms/image (1 thread)%n", photos.size(), medianMs);

    // Options: all results, threshold.
    byte[] first = Files.readAllBytes(photos.get(0));
    try (EdgeDctClassifier all = EdgeDctClassifier.create(modelPath.toString(),
        Options.builder().setNumThreads(1).setMaxResults(-1).build())) {
      List<Category> r = all.classify(first);
      check(r.size() == all.labels().size(), "maxResults -1 gives every class");
      checkResult(r, r.size(), "all");
      double sum = r.stream().mapToDouble(Category::score).sum();
      check(Math.abs(sum - 1.0) < 1e-3, "scores sum to 1 (" + sum + ")");
      check(r.subList(0, 5).equals(clf.classify(first)), "top-5 is a prefix of all");
    }
    try (EdgeDctClassifier thr = EdgeDctClassifier.create(modelPath.toString(),
        Options.builder().setNumThreads(2).setMaxResults(-1).setScoreThreshold(0.05f).build())) {
      List<Category> r = thr.classify(first);
      check(!r.isEmpty() && r.stream().allMatch(c -> c.score() >= 0.05f), "threshold");
    }

    // Conformance corpus: a result or an EdgeDctException, never anything else.
    int ok = 0, refused = 0;
    for (Path f : conformance) {
      try {
        checkResult(clf.classify(Files.readAllBytes(f)), 5, f.toString());
        ok++;
      } catch (EdgeDctException e) {
        check(e.status() >= 1 && e.status() <= 12, f + ": status " + e.status());
        refused++;
        System.out.println("  refused " + Paths.get(args[2]).relativize(f) + ": [" + e.status() + "] " + e.getMessage());
      }
    }
    System.out.printf("conformance: %d JPEGs, %d classified, %d refused with EdgeDctException%n",
        conformance.size(), ok, refused);

    // Mutated JPEGs (seeded).
    List<Path> sources = new ArrayList<>(photos);
    sources.addAll(conformance);
    Random rnd = new Random(seed);
    ok = 0;
    refused = 0;
    for (int m = 0; m < mutations; m++) {
      byte[] src = Files.readAllBytes(sources.get(rnd.nextInt(sources.size())));
      if (src.length == 0) continue;
      try {
        checkResult(clf.classify(mutate(src, rnd)), 5, "mutation " + m);
        ok++;
      } catch (EdgeDctException e) {
        refused++;
      }
    }
    System.out.printf("mutations: %d (seed %d), %d classified, %d refused%n", mutations, seed, ok, refused);
    expectError("empty JPEG", () -> clf.classify(new byte[0]), EdgeDctException.INVALID_JPEG);

    // Corrupt models.
    Options o = Options.builder().setNumThreads(1).build();
    List<Object[]> bad = new ArrayList<>();
    bad.add(new Object[] {"truncated to 100 bytes", Arrays.copyOf(model, 100)});
    bad.add(new Object[] {"truncated to half", Arrays.copyOf(model, model.length / 2)});
    byte[] garbage = new byte[model.length];
    new Random(seed).nextBytes(garbage);
    bad.add(new Object[] {"garbage", garbage});
    bad.add(new Object[] {"empty", new byte[0]});
    bad.add(new Object[] {"without edge_dct metadata", replace(model, "edge_dct", "edge_dcX")});
    bad.add(new Object[] {"metadata not JSON", replace(model, "{\"version\"", "[\"version\"")});
    bad.add(new Object[] {"metadata bad layout", replace(model, "\"split\"", "\"splot\"")});
    bad.add(new Object[] {"grid disagrees with model", replace(model, "\"grid\":[28,28]", "\"grid\":[26,28]")});
    bad.add(new Object[] {"no labels", replace(model, "\"labels\":[", "\"labelz\":[")});
    for (Object[] b : bad) {
      String what = (String) b[0];
      byte[] bytes = (byte[]) b[1];
      EdgeDctException e = expectError("model " + what,
          () -> EdgeDctClassifier.create(ByteBuffer.wrap(bytes), o).close(), EdgeDctException.INVALID_MODEL);
      ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length);
      direct.put(bytes).flip();
      expectError("model (direct) " + what, () -> EdgeDctClassifier.create(direct, o).close(),
          EdgeDctException.INVALID_MODEL);
      Path tmp = Files.createTempFile("edgedct-bad", ".tflite");
      try {
        Files.write(tmp, bytes);
        expectError("model (file) " + what, () -> EdgeDctClassifier.create(tmp.toString(), o).close(),
            EdgeDctException.INVALID_MODEL);
      } finally {
        Files.delete(tmp);
      }
      System.out.println("  model " + what + " -> " + e.getMessage());
    }
    expectError("missing model file", () -> EdgeDctClassifier.create("/nonexistent/model.tflite", o),
        EdgeDctException.IO);

    // GPU: either a working classifier or a clean EdgeDctException.
    try (EdgeDctClassifier gpu = EdgeDctClassifier.create(modelPath.toString(),
        Options.builder().setAccelerator(Options.Accelerator.GPU).build())) {
      checkResult(gpu.classify(first), 5, "gpu");
      System.out.println("gpu: available, top-1 " + gpu.classify(first).get(0));
    } catch (EdgeDctException e) {
      check(e.status() == EdgeDctException.RUNTIME || e.status() == EdgeDctException.INVALID_MODEL,
          "gpu failure status");
      System.out.println("gpu: unavailable here -> EdgeDctException: " + e.getMessage());
    }

    // Lifecycle.
    clf.close();
    clf.close();
    expectError("classify after close", () -> clf.classify(first), EdgeDctException.BAD_ARGUMENT);
    try (EdgeDctClassifier c = EdgeDctClassifier.create(modelPath.toString(), null)) {
      check(c.classify(first).size() == 5, "default options");
    }
    System.out.println("HostTest OK (" + checks + " checks)");
  }
}
