/*
 * oracle.c - test-only bindings to the system libjpeg-turbo, loaded by
 * tests/oracle.py through ctypes.  It is deliberately independent of the
 * edct core: coefficients come from jpeg_read_coefficients (the whole-image
 * path edct does not use) and test files are encoded with any parameters
 * libjpeg's compressor offers.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} oracle_err;

static void oracle_error_exit(j_common_ptr cinfo) {
  oracle_err *e = (oracle_err *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

static void oracle_silent(j_common_ptr cinfo) { (void)cinfo; }

/* An error manager that longjmps to e->jump with the message, and prints nothing. */
static struct jpeg_error_mgr *oracle_errors(oracle_err *e) {
  struct jpeg_error_mgr *mgr = jpeg_std_error(&e->pub);
  e->pub.error_exit = oracle_error_exit;
  e->pub.output_message = oracle_silent;
  return mgr;
}

/*
 * Reads quantized coefficients with jpeg_read_coefficients.
 * dims receives [num_components, warnings, (height_in_blocks, width_in_blocks) x n].
 * out receives every component's blocks, row-major, 64 natural-order values each;
 * pass out = NULL to query the sizes.  Returns 0, or -1 with msg filled.
 */
int oracle_read_coefficients(const unsigned char *data, unsigned long size, short *out,
                             int *dims, char *msg) {
  struct jpeg_decompress_struct cinfo;
  oracle_err jerr;
  cinfo.err = oracle_errors(&jerr);
  if (setjmp(jerr.jump)) {
    strcpy(msg, jerr.message);
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, size);
  while (jpeg_read_header(&cinfo, FALSE) == JPEG_HEADER_TABLES_ONLY) {
  }
  jvirt_barray_ptr *arrays = jpeg_read_coefficients(&cinfo);
  dims[0] = cinfo.num_components;
  for (int ci = 0; ci < cinfo.num_components; ci++) {
    jpeg_component_info *comp = &cinfo.comp_info[ci];
    dims[2 + 2 * ci] = (int)comp->height_in_blocks;
    dims[3 + 2 * ci] = (int)comp->width_in_blocks;
    if (out == NULL) continue;
    for (JDIMENSION by = 0; by < comp->height_in_blocks; by++) {
      JBLOCKARRAY row =
          (*cinfo.mem->access_virt_barray)((j_common_ptr)&cinfo, arrays[ci], by, 1, FALSE);
      memcpy(out, row[0], comp->width_in_blocks * sizeof(JBLOCK));
      out += comp->width_in_blocks * DCTSIZE2;
    }
  }
  dims[1] = (int)jerr.pub.num_warnings;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return 0;
}

/*
 * Encodes 8-bit pixels (ncomp = 1 gray, 3 RGB or 4 CMYK) with libjpeg.
 * samp = (h, v) sampling factors of each component in turn; progressive,
 * arith, restart_interval (MCUs) and optimize select the coding.  *out is
 * malloc'ed (free with oracle_free).  Returns 0, or -1 with msg filled.
 */
int oracle_encode(const unsigned char *pixels, int width, int height, int ncomp, int quality,
                  const int *samp, int progressive, int arith, int restart_interval,
                  int optimize, unsigned char **out, unsigned long *out_size, char *msg) {
  struct jpeg_compress_struct cinfo;
  oracle_err jerr;
  *out = NULL;
  *out_size = 0;
  cinfo.err = oracle_errors(&jerr);
  if (setjmp(jerr.jump)) {
    strcpy(msg, jerr.message);
    jpeg_destroy_compress(&cinfo);
    free(*out);
    *out = NULL;
    return -1;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, out_size);
  cinfo.image_width = (JDIMENSION)width;
  cinfo.image_height = (JDIMENSION)height;
  cinfo.input_components = ncomp;
  cinfo.in_color_space = ncomp == 1 ? JCS_GRAYSCALE : ncomp == 4 ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  for (int ci = 0; ci < ncomp; ci++) {
    cinfo.comp_info[ci].h_samp_factor = samp[2 * ci];
    cinfo.comp_info[ci].v_samp_factor = samp[2 * ci + 1];
  }
  cinfo.arith_code = arith ? TRUE : FALSE;
  cinfo.optimize_coding = optimize ? TRUE : FALSE;
  cinfo.restart_interval = (unsigned int)restart_interval;
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * ncomp);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return 0;
}

void oracle_free(unsigned char *p) { free(p); }
