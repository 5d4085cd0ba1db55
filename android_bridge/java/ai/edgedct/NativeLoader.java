package ai.edgedct;

/** Loads the JNI library (and, where it is packaged beside it, LiteRT's libLiteRt.so). */
final class NativeLoader {
  /** System property naming the JNI library file to load instead (host tests). */
  static final String LIBRARY_PATH_PROPERTY = "ai.edgedct.library";

  private static boolean loaded;

  private NativeLoader() {}

  static synchronized void load() {
    if (loaded) return;
    String path = System.getProperty(LIBRARY_PATH_PROPERTY);
    if (path != null && !path.isEmpty()) {
      System.load(path);
    } else {
      try {
        // On Android the app packages libLiteRt.so (com.google.ai.edge.litert) next to ours;
        // loading it first also helps old linkers that do not search the app's library folder.
        System.loadLibrary("LiteRt");
      } catch (UnsatisfiedLinkError ignored) {
        // Found through libedgedct_jni.so's own dependencies (rpath on the host).
      }
      System.loadLibrary("edgedct_jni");
    }
    loaded = true;
  }
}
