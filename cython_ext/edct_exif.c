/*
 * edct_exif.c - EXIF orientation from an APP1 payload.
 *
 * Reads only IFD0's Orientation tag (0x0112); every offset is bounds-checked
 * against the payload, so any byte string is safe to pass.
 */
#include <string.h>

#include "edct.h"

static unsigned read_u16(const uint8_t *p, int big_endian) {
  return big_endian ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]);
}

static uint32_t read_u32(const uint8_t *p, int big_endian) {
  if (big_endian)
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int edct_exif_orientation(const uint8_t *app1, size_t size) {
  static const uint8_t exif_id[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (app1 == NULL || size < 6 + 8 || memcmp(app1, exif_id, 6) != 0) return 0;
  const uint8_t *tiff = app1 + 6;
  size_t tiff_size = size - 6;
  int big_endian;
  if (tiff[0] == 'M' && tiff[1] == 'M')
    big_endian = 1;
  else if (tiff[0] == 'I' && tiff[1] == 'I')
    big_endian = 0;
  else
    return 0;
  if (read_u16(tiff + 2, big_endian) != 42) return 0;
  uint32_t ifd = read_u32(tiff + 4, big_endian);
  if (ifd > tiff_size || tiff_size - ifd < 2) return 0;
  unsigned count = read_u16(tiff + ifd, big_endian);
  size_t entries = (size_t)ifd + 2;
  for (unsigned i = 0; i < count; i++) {
    size_t at = entries + (size_t)i * 12;
    if (at > tiff_size || tiff_size - at < 12) return 0;
    const uint8_t *e = tiff + at;
    if (read_u16(e, big_endian) != 0x0112) continue;
    unsigned type = read_u16(e + 2, big_endian);
    if (read_u32(e + 4, big_endian) != 1) return 0;
    unsigned value;
    if (type == 3) /* SHORT, left-justified in the value field */
      value = read_u16(e + 8, big_endian);
    else if (type == 4) /* LONG, written by a few encoders */
      value = (unsigned)read_u32(e + 8, big_endian);
    else
      return 0;
    return (value >= 1 && value <= 8) ? (int)value : 0;
  }
  return 0;
}
