/*
 * edct_jni.c - JNI entry points of ai.edgedct.EdgeDctClassifier.
 *
 * Thin: argument checks, Java memory access, and the one place where an
 * edcl_error becomes a Java EdgeDctException (throw_error).  The work is in
 * edcl_classifier.c.  The Java class serializes calls on one instance.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edcl_classifier.h"

#define EXCEPTION_CLASS "ai/edgedct/EdgeDctException"

/* Throws EdgeDctException(message, status).  The message is reduced to ASCII
 * so it is valid modified UTF-8 whatever the metadata contained. */
static void throw_error(JNIEnv *env, const edcl_error *err) {
  char msg[EDCL_MESSAGE_LEN];
  size_t i;
  for (i = 0; i + 1 < sizeof(msg) && err->message[i]; i++) {
    unsigned char c = (unsigned char)err->message[i];
    msg[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
  }
  msg[i] = '\0';
  if ((*env)->ExceptionCheck(env)) return;
  jclass cls = (*env)->FindClass(env, EXCEPTION_CLASS);
  if (cls == NULL) return; /* NoClassDefFoundError pending */
  jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(Ljava/lang/String;I)V");
  jstring text = ctor ? (*env)->NewStringUTF(env, msg) : NULL;
  if (text != NULL) {
    jobject ex = (*env)->NewObject(env, cls, ctor, text, (jint)err->status);
    if (ex != NULL) (*env)->Throw(env, (jthrowable)ex);
  }
  (*env)->DeleteLocalRef(env, cls);
}

static void throw_message(JNIEnv *env, int status, const char *message) {
  edcl_error err;
  edcl_fail(&err, status, "%s", message);
  throw_error(env, &err);
}

static int make_options(JNIEnv *env, jint threads, jint accel, jint max_results, jfloat threshold,
                        edcl_options *opts) {
  edcl_default_options(opts);
  opts->num_threads = threads;
  opts->accelerator = accel;
  opts->max_results = max_results;
  opts->score_threshold = (double)threshold;
  (void)env;
  return 0;
}

static jlong finish_create(JNIEnv *env, int rc, edcl_classifier *cl, const edcl_error *err) {
  if (rc != EDCL_OK) {
    throw_error(env, err);
    return 0;
  }
  return (jlong)(intptr_t)cl;
}

static edcl_classifier *from_handle(JNIEnv *env, jlong handle) {
  if (handle == 0) throw_message(env, EDCT_ERR_ARGUMENT, "the classifier is closed");
  return (edcl_classifier *)(intptr_t)handle;
}

/* offset/length against a Java array or buffer length. */
static int check_range(JNIEnv *env, jlong capacity, jint offset, jint length) {
  if (offset < 0 || length < 0 || (jlong)offset + length > capacity) {
    throw_message(env, EDCT_ERR_ARGUMENT, "offset/length outside the data");
    return 0;
  }
  return 1;
}

JNIEXPORT jlong JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeCreateFromFile(
    JNIEnv *env, jclass cls, jstring path, jint threads, jint accel, jint max_results,
    jfloat threshold) {
  edcl_options opts;
  edcl_error err;
  edcl_classifier *cl = NULL;
  (void)cls;
  if (path == NULL) {
    throw_message(env, EDCT_ERR_ARGUMENT, "model path is null");
    return 0;
  }
  const char *p = (*env)->GetStringUTFChars(env, path, NULL);
  if (p == NULL) return 0; /* OutOfMemoryError pending */
  make_options(env, threads, accel, max_results, threshold, &opts);
  int rc = edcl_create_from_file(p, &opts, &cl, &err);
  (*env)->ReleaseStringUTFChars(env, path, p);
  return finish_create(env, rc, cl, &err);
}

JNIEXPORT jlong JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeCreateFromBytes(
    JNIEnv *env, jclass cls, jbyteArray model, jint offset, jint length, jint threads, jint accel,
    jint max_results, jfloat threshold) {
  edcl_options opts;
  edcl_error err;
  edcl_classifier *cl = NULL;
  (void)cls;
  if (model == NULL) {
    throw_message(env, EDCT_ERR_ARGUMENT, "model is null");
    return 0;
  }
  if (!check_range(env, (*env)->GetArrayLength(env, model), offset, length)) return 0;
  jbyte *bytes = (*env)->GetByteArrayElements(env, model, NULL);
  if (bytes == NULL) return 0;
  make_options(env, threads, accel, max_results, threshold, &opts);
  int rc = edcl_create((const uint8_t *)bytes + offset, (size_t)length, &opts, &cl, &err);
  (*env)->ReleaseByteArrayElements(env, model, bytes, JNI_ABORT);
  return finish_create(env, rc, cl, &err);
}

JNIEXPORT jlong JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeCreateFromDirect(
    JNIEnv *env, jclass cls, jobject model, jint offset, jint length, jint threads, jint accel,
    jint max_results, jfloat threshold) {
  edcl_options opts;
  edcl_error err;
  edcl_classifier *cl = NULL;
  (void)cls;
  const uint8_t *base = model ? (*env)->GetDirectBufferAddress(env, model) : NULL;
  if (base == NULL) {
    throw_message(env, EDCT_ERR_ARGUMENT, "model is not a direct buffer");
    return 0;
  }
  if (!check_range(env, (*env)->GetDirectBufferCapacity(env, model), offset, length)) return 0;
  make_options(env, threads, accel, max_results, threshold, &opts);
  int rc = edcl_create(base + offset, (size_t)length, &opts, &cl, &err);
  return finish_create(env, rc, cl, &err);
}

JNIEXPORT jbyteArray JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeLabels(JNIEnv *env,
                                                                           jclass cls,
                                                                           jlong handle) {
  (void)cls;
  edcl_classifier *cl = from_handle(env, handle);
  if (cl == NULL) return NULL;
  const edcl_meta *m = edcl_get_meta(cl);
  if (m->labels_size > 0x7FFFFFFF) {
    throw_message(env, EDCL_ERR_MODEL, "labels too large");
    return NULL;
  }
  jbyteArray out = (*env)->NewByteArray(env, (jsize)m->labels_size);
  if (out != NULL)
    (*env)->SetByteArrayRegion(env, out, 0, (jsize)m->labels_size, (const jbyte *)m->labels);
  return out;
}

JNIEXPORT jint JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeMaxCategories(JNIEnv *env,
                                                                            jclass cls,
                                                                            jlong handle) {
  (void)cls;
  edcl_classifier *cl = from_handle(env, handle);
  return cl ? edcl_max_categories(cl) : 0;
}

/* Classifies data[0, size) and copies the categories into the Java arrays. */
static jint classify(JNIEnv *env, edcl_classifier *cl, const uint8_t *data, size_t size,
                     jintArray indices, jdoubleArray scores) {
  edcl_error err;
  int count = 0, cap = edcl_max_categories(cl);
  if (indices == NULL || scores == NULL || (*env)->GetArrayLength(env, indices) < cap ||
      (*env)->GetArrayLength(env, scores) < cap) {
    throw_message(env, EDCT_ERR_ARGUMENT, "result arrays too small");
    return 0;
  }
  int *idx = malloc((size_t)cap * sizeof(int));
  double *sc = malloc((size_t)cap * sizeof(double));
  int rc = (idx && sc) ? edcl_classify(cl, data, size, idx, sc, cap, &count, &err)
                       : edcl_fail(&err, EDCT_ERR_NOMEM, "out of memory");
  if (rc == EDCL_OK) {
    jint *ji = (jint *)idx; /* jint is int on every JNI platform */
    (*env)->SetIntArrayRegion(env, indices, 0, count, ji);
    (*env)->SetDoubleArrayRegion(env, scores, 0, count, sc);
  } else {
    throw_error(env, &err);
  }
  free(idx);
  free(sc);
  return count;
}

JNIEXPORT jint JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeClassifyBytes(
    JNIEnv *env, jclass cls, jlong handle, jbyteArray jpeg, jint offset, jint length,
    jintArray indices, jdoubleArray scores) {
  (void)cls;
  edcl_classifier *cl = from_handle(env, handle);
  if (cl == NULL) return 0;
  if (jpeg == NULL) {
    throw_message(env, EDCT_ERR_ARGUMENT, "jpeg is null");
    return 0;
  }
  if (!check_range(env, (*env)->GetArrayLength(env, jpeg), offset, length)) return 0;
  jbyte *bytes = (*env)->GetByteArrayElements(env, jpeg, NULL);
  if (bytes == NULL) return 0;
  jint n = classify(env, cl, (const uint8_t *)bytes + offset, (size_t)length, indices, scores);
  (*env)->ReleaseByteArrayElements(env, jpeg, bytes, JNI_ABORT);
  return n;
}

JNIEXPORT jint JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeClassifyDirect(
    JNIEnv *env, jclass cls, jlong handle, jobject jpeg, jint offset, jint length,
    jintArray indices, jdoubleArray scores) {
  (void)cls;
  edcl_classifier *cl = from_handle(env, handle);
  if (cl == NULL) return 0;
  const uint8_t *base = jpeg ? (*env)->GetDirectBufferAddress(env, jpeg) : NULL;
  if (base == NULL) {
    throw_message(env, EDCT_ERR_ARGUMENT, "jpeg is not a direct buffer");
    return 0;
  }
  if (!check_range(env, (*env)->GetDirectBufferCapacity(env, jpeg), offset, length)) return 0;
  return classify(env, cl, base + offset, (size_t)length, indices, scores);
}

JNIEXPORT void JNICALL Java_ai_edgedct_EdgeDctClassifier_nativeFree(JNIEnv *env, jclass cls,
                                                                   jlong handle) {
  (void)env;
  (void)cls;
  edcl_free((edcl_classifier *)(intptr_t)handle);
}
