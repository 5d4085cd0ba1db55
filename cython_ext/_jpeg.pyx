# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""edge_dct._jpeg: thin wrapper over the edct C core.

Everything here is private; edge_dct.jpeg and edge_dct.bundle build the public API on
top.  Every C status goes through err_check(), the one place C errors become Python
exceptions (edge_dct.errors), chosen by status and by what was read (a JPEG or a model).
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy, memset

cimport edct
cimport numpy as cnp

from edge_dct.errors import (
    EdgeDctError,
    ErrorCode,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidJpegError,
    MetadataNotFoundError,
    ModelError,
    OutOfMemoryError,
    UnsupportedJpegError,
)

DEFAULT_MAX_PIXELS = edct.EDCT_DEFAULT_MAX_PIXELS
DEFAULT_MAX_SCANS = edct.EDCT_DEFAULT_MAX_SCANS
METADATA_NAME = edct.EDCT_METADATA_NAME.decode()

# C status -> exception, when reading a JPEG and when reading a model (edct_find_metadata).
_JPEG_ERRORS = {
    edct.EDCT_ERR_INVALID: InvalidJpegError,
    edct.EDCT_ERR_UNSUPPORTED: UnsupportedJpegError,
    edct.EDCT_ERR_TOO_LARGE: ImageTooLargeError,
    edct.EDCT_ERR_NOMEM: OutOfMemoryError,
    edct.EDCT_ERR_ARGUMENT: InvalidArgumentError,
}
_MODEL_ERRORS = {
    edct.EDCT_ERR_INVALID: ModelError,
    edct.EDCT_ERR_UNSUPPORTED: MetadataNotFoundError,  # no such entry: not an edge_dct bundle
    edct.EDCT_ERR_NOMEM: OutOfMemoryError,
    edct.EDCT_ERR_ARGUMENT: InvalidArgumentError,
}

_COLOR_SPACES = ("unknown", "gray", "ycbcr", "rgb", "cmyk", "ycck")

cnp.import_array()

# Decodes per entropy path, for tests and benchmarks: counted under the GIL after each decode.
cdef long _path_counts[4]
_PATH_NAMES = {
    edct.EDCT__PATH_NONE: "none",
    edct.EDCT__PATH_LIBJPEG: "libjpeg",
    edct.EDCT__PATH_BUILTIN: "builtin",  # edge_dct's Huffman decoder
    edct.EDCT__PATH_FALLBACK: "fallback",  # it gave up; libjpeg decoded from the start
}


def entropy_path_counts():
    """How many read_dct/prepare decodes took each entropy path so far."""
    return {name: _path_counts[path] for path, name in _PATH_NAMES.items()}


cdef inline void count_path(const edct.edct_decoder *dec) noexcept:
    _path_counts[edct.edct__entropy_path(dec)] += 1


cdef int err_check(int status, const edct.edct_error *err, str name,
                   bint model=False) except -1:
    """Raises the typed exception for a failed C call; returns 0 on success.

    Args:
        status: The edct_status the call returned.
        err: The edct_error it filled.
        name: The source, named in the message.
        model: The input was a model (.tflite) rather than a JPEG.
    """
    if status == edct.EDCT_OK:
        return 0
    reason = err.message.decode("utf-8", "replace") or edct.edct_status_name(status).decode()
    # EDCT_ERR_ABORTED (only C consumers abort) has no subclass of its own
    cls = (_MODEL_ERRORS if model else _JPEG_ERRORS).get(status, EdgeDctError)
    code = ErrorCode.ABORTED if status == edct.EDCT_ERR_ABORTED else None
    raise cls(reason, name, err.offset if err.offset >= 0 else None, code=code)


cdef tuple warning_report(const edct.edct_error *err):
    """(num_warnings, first_warning or None) of a successful call; edge_dct.errors.warn_decoded
    turns it into the EdgeDctWarning."""
    first = err.first_warning.decode("utf-8", "replace") if err.num_warnings else None
    return err.num_warnings, first


cdef inline cnp.ndarray empty_array(cnp.npy_intp d0, cnp.npy_intp d1, cnp.npy_intp d2,
                                    int typenum):
    """An uninitialized C-contiguous (d0, d1, d2) array, straight from the numpy C API."""
    cdef cnp.npy_intp dims[3]
    dims[0] = d0
    dims[1] = d1
    dims[2] = d2
    return cnp.PyArray_EMPTY(3, dims, typenum, 0)


cdef object quant_array(const uint16_t *tables, int n, size_t stride):
    """n tables of 64 values (stride apart, in uint16 units) as one (n, 8, 8) uint16 array."""
    cdef cnp.ndarray arr = empty_array(n, 8, 8, cnp.NPY_UINT16)
    cdef uint16_t *out = <uint16_t *>cnp.PyArray_DATA(arr)
    cdef int i
    for i in range(n):
        memcpy(out + 64 * i, tables + i * stride, 64 * sizeof(uint16_t))
    return arr


cdef dict info_dict(const edct.edct_info *info):
    cdef int n = info.num_components
    cdef int ci
    return {
        "width": info.width,
        "height": info.height,
        "precision": info.precision,
        "progressive": bool(info.progressive),
        "arithmetic": bool(info.arithmetic),
        "restart_interval": info.restart_interval,
        "orientation": info.orientation,
        "color_space": _COLOR_SPACES[info.color_space],
        "ids": tuple([info.comp[ci].id for ci in range(n)]),
        "sampling": tuple([(info.comp[ci].h_samp, info.comp[ci].v_samp) for ci in range(n)]),
        "blocks": tuple([(info.comp[ci].height_in_blocks, info.comp[ci].width_in_blocks)
                         for ci in range(n)]),
        "quant": quant_array(info.comp[0].quant, n,
                             sizeof(edct.edct_component) // sizeof(uint16_t)),
    }


cdef edct.edct_decoder *open_decoder(const uint8_t[::1] data, str name, uint64_t max_pixels,
                                     int max_scans, bint strict,
                                     bint keep_markers=False) except NULL:
    cdef edct.edct_options opts
    cdef edct.edct_error err
    cdef edct.edct_decoder *dec
    cdef const uint8_t *ptr = NULL
    cdef size_t size = data.shape[0]
    if size > 0:
        ptr = &data[0]
    opts.max_pixels = max_pixels
    opts.max_scans = max_scans
    opts.strict = strict
    opts.keep_markers = keep_markers
    with nogil:
        dec = edct.edct_open(ptr, size, &opts, &err)
    if dec == NULL:
        err_check(err.status if err.status else edct.EDCT_ERR_INVALID, &err, name)
    return dec


def read_header(const uint8_t[::1] data not None, str name, uint64_t max_pixels=0,
                int max_scans=0):
    """Header fields of a JPEG as a dict (markers only, no entropy decoding)."""
    cdef edct.edct_decoder *dec = open_decoder(data, name, max_pixels, max_scans, True)
    try:
        return info_dict(edct.edct_get_info(dec))
    finally:
        edct.edct_close(dec)


def read_dct(const uint8_t[::1] data not None, str name, bint dequantize=True,
             bint strict=True, uint64_t max_pixels=DEFAULT_MAX_PIXELS,
             int max_scans=DEFAULT_MAX_SCANS, bint builtin=True):
    """Decodes every component's coefficients (builtin=False: libjpeg's entropy decoder only).

    Returns:
        (info, planes, quant_tables, num_warnings, first_warning): info as in
        read_header; planes one int16 array (height_in_blocks,
        width_in_blocks, 64) per component, natural order k = 8*v + u;
        quant_tables the (8, 8) uint16 tables used, natural order.
    """
    cdef edct.edct_decoder *dec = open_decoder(data, name, max_pixels, max_scans, strict)
    cdef edct.edct_error err
    cdef const edct.edct_info *hdr = edct.edct_get_info(dec)
    cdef int16_t *ptrs[4]
    cdef uint16_t quant[4][64]
    cdef cnp.ndarray plane
    cdef int status
    cdef int ci
    memset(ptrs, 0, sizeof(ptrs))
    memset(quant, 0, sizeof(quant))
    try:
        info = info_dict(hdr)
        planes = []
        for ci in range(hdr.num_components):
            plane = empty_array(hdr.comp[ci].height_in_blocks, hdr.comp[ci].width_in_blocks, 64,
                                cnp.NPY_INT16)
            ptrs[ci] = <int16_t *>cnp.PyArray_DATA(plane)
            planes.append(plane)
        if not builtin:
            edct.edct__disable_builtin(dec)
        with nogil:
            status = edct.edct_decode_planes(dec, ptrs, dequantize, quant, &err)
        count_path(dec)
        err_check(status, &err, name)
        tables = quant_array(&quant[0][0], len(planes), 64)
        return (info, planes, tables) + warning_report(&err)
    finally:
        edct.edct_close(dec)


cdef int fill_spec(edct.edct_spec *s, spec) except -1:
    """Copies an edge_dct.InputSpec into the C struct."""
    memset(s, 0, sizeof(edct.edct_spec))
    s.grid_h, s.grid_w = spec.grid
    if spec.resize["mode"] == "shorter_side":
        s.resize_mode = edct.EDCT_RESIZE_SHORTER_SIDE
        s.resize_size = spec.resize["size"]
    else:
        s.resize_mode = edct.EDCT_RESIZE_STRETCH
    s.layout = edct.EDCT_LAYOUT_SPLIT if spec.layout == "split" else edct.EDCT_LAYOUT_MERGED
    s.normalize = spec.normalize is not None
    for ci, comp in enumerate(("y", "cb", "cr")):
        sel = spec.channels[comp]
        s.num_channels[ci] = len(sel)
        norm = spec.normalization(comp)
        for i, k in enumerate(sel):
            s.channels[ci][i] = k
            if norm is not None:
                s.mean[ci][i] = norm[0][i]
                s.std[ci][i] = norm[1][i]
    return 0


def eval_window(spec, int width, int height):
    """The spec's evaluation window (x, y, width, height) for an oriented image size."""
    cdef edct.edct_spec s
    fill_spec(&s, spec)
    cdef edct.edct_window w = edct.edct_eval_window(&s, width, height)
    return (w.x, w.y, w.width, w.height)


cdef class Workspace:
    """Scratch memory for prepare(), reused across calls; use one per thread."""
    cdef edct.edct_workspace *ws

    def __cinit__(self):
        self.ws = edct.edct_workspace_new()
        if self.ws == NULL:
            raise OutOfMemoryError("cannot allocate prepare() scratch memory (edct_workspace_new)")

    def __dealloc__(self):
        edct.edct_workspace_free(self.ws)


def prepare(const uint8_t[::1] data not None, str name, spec, list outputs, bint int8,
            tuple scales, tuple zero_points, window, bint hflip, bint orientation,
            bint strict, uint64_t max_pixels, int max_scans, Workspace workspace=None,
            bint builtin=True):
    """Maps a JPEG onto spec's grid, writing into `outputs` (C-contiguous arrays);
    builtin=False: libjpeg's entropy decoder only.

    Returns:
        (num_warnings, first_warning).
    """
    cdef edct.edct_decoder *dec = open_decoder(data, name, max_pixels, max_scans, strict)
    cdef edct.edct_spec s
    cdef edct.edct_output out
    cdef edct.edct_window w
    cdef edct.edct_window *wp = NULL
    cdef edct.edct_error err
    cdef float[:, :, :, ::1] fview
    cdef signed char[:, :, :, ::1] qview
    cdef int status
    cdef edct.edct_workspace *ws = workspace.ws if workspace is not None else NULL
    try:
        fill_spec(&s, spec)
        memset(&out, 0, sizeof(out))
        out.dtype = edct.EDCT_INT8 if int8 else edct.EDCT_FLOAT32
        for i, arr in enumerate(outputs):
            if int8:
                qview = arr
                out.tensor[i] = &qview[0, 0, 0, 0]
                out.scale[i] = scales[i]
                out.zero_point[i] = zero_points[i]
            else:
                fview = arr
                out.tensor[i] = &fview[0, 0, 0, 0]
        if window is not None:
            w.x, w.y, w.width, w.height = window
            w.hflip = hflip
            wp = &w
        if not builtin:
            edct.edct__disable_builtin(dec)
        with nogil:
            status = edct.edct_prepare(dec, &s, wp, orientation, &out, ws, &err)
        count_path(dec)
        err_check(status, &err, name)
        return warning_report(&err)
    finally:
        edct.edct_close(dec)


_SUBSAMPLINGS = {"444": edct.EDCT_SUB_444, "422": edct.EDCT_SUB_422, "420": edct.EDCT_SUB_420,
                 "440": edct.EDCT_SUB_440}
SUBSAMPLINGS = tuple(_SUBSAMPLINGS)


cdef int fill_encode_options(edct.edct_encode_options *o, int quality, tables, str subsampling,
                             bint optimize, bint progressive, int restart_interval,
                             bint keep_markers) except -1:
    """Copies checked Python arguments into the C struct (tables: None or a (2, 64) uint16
    array; edct_check_encode_options checks the values again)."""
    cdef const uint16_t[:, ::1] t
    cdef int i, k
    edct.edct_default_encode_options(o)
    o.quality = quality
    if tables is not None:
        t = tables
        o.use_tables = 1
        for i in range(2):
            for k in range(64):
                o.tables[i][k] = t[i, k]
    o.subsampling = _SUBSAMPLINGS[subsampling]
    o.optimize = optimize
    o.progressive = progressive
    o.restart_interval = restart_interval
    o.keep_markers = keep_markers
    return 0


cdef bytes take_output(uint8_t *buf, size_t size):
    """The C core's output buffer as bytes (copied once), released."""
    try:
        return (<char *>buf)[:size]
    finally:
        edct.edct_free(buf)


def encode(const uint8_t[:, :, ::1] pixels not None, int quality, tables, str subsampling,
           bint optimize, bint progressive, int restart_interval):
    """Compresses (height, width, channels) uint8 pixels, channels 1 or 3 (RGB).

    Returns:
        The JPEG bytes.
    """
    cdef edct.edct_encode_options o
    cdef edct.edct_error err
    cdef uint8_t *buf = NULL
    cdef size_t size = 0
    cdef int status
    fill_encode_options(&o, quality, tables, subsampling, optimize, progressive,
                        restart_interval, False)
    with nogil:
        status = edct.edct_encode(&pixels[0, 0, 0], pixels.shape[1], pixels.shape[0],
                                  pixels.shape[2], pixels.strides[0], &o, &buf, &size, &err)
    err_check(status, &err, "<pixels>")
    return take_output(buf, size)


def transcode(const uint8_t[::1] data not None, str name, int quality, tables, bint optimize,
              bint progressive, int restart_interval, bint keep_markers, bint strict,
              uint64_t max_pixels, int max_scans, bint builtin=True, keep=None):
    """Requantizes a JPEG's coefficients to new tables (quality 0 and tables None: the file's
    own) and re-codes them (builtin=False: through libjpeg only, never the fused built-in
    decoder + writer).  keep: None, or (frequencies, rows, cols) as prepare_region returns
    them, one entry per component of the file: every other coefficient becomes 0.

    Returns:
        (jpeg_bytes, num_warnings, first_warning).
    """
    cdef edct.edct_encode_options o
    cdef edct.edct_error err
    cdef uint8_t *buf = NULL
    cdef size_t size = 0
    cdef int status
    fill_encode_options(&o, quality, tables, "420", optimize, progressive, restart_interval,
                        keep_markers)
    if keep is not None:
        fill_region(&o.keep, keep)
        o.use_keep = 1
    cdef edct.edct_decoder *dec = open_decoder(data, name, max_pixels, max_scans, strict,
                                               keep_markers)
    try:
        if keep is not None and len(keep[0]) != edct.edct_get_info(dec).num_components:
            raise InvalidArgumentError(
                f"keep: {len(keep[0])} components given, the file has "
                f"{edct.edct_get_info(dec).num_components} (take it from region_read of this file)",
                name)
        if not builtin:
            edct.edct__disable_builtin(dec)
        with nogil:
            status = edct.edct_transcode(dec, &o, &buf, &size, &err)
        count_path(dec)
        err_check(status, &err, name)
        return (take_output(buf, size),) + warning_report(&err)
    finally:
        edct.edct_close(dec)


cdef int fill_region(edct.edct_region *r, keep) except -1:
    """(frequencies, rows, cols) -> edct_region: per component k, (first, end) block rows and
    columns; components beyond the tuples are not kept."""
    frequencies, rows, cols = keep
    if not (len(frequencies) == len(rows) == len(cols) <= 4):
        raise ValueError("keep: frequencies, rows and cols must have one entry per component (<= 4)")
    memset(r, 0, sizeof(edct.edct_region))
    cdef int c
    for c in range(len(frequencies)):
        r.frequencies[c] = frequencies[c]
        r.rows[c][0], r.rows[c][1] = rows[c]
        r.cols[c][0], r.cols[c][1] = cols[c]
    return 0


def prepare_region(const uint8_t[::1] data not None, str name, spec, window, bint hflip,
                   bint orientation, uint64_t max_pixels):
    """What prepare reads of each component: the k x k lowest frequencies (k, 0 for a
    component it does not use) of the blocks in block rows [first, end) and columns
    [first, end) of the file.  Header only.

    Returns:
        (frequencies, rows, cols): tuples with one entry per component of the file, rows and
        cols as (first, end) pairs.
    """
    cdef edct.edct_decoder *dec = open_decoder(data, name, max_pixels, 0, True)
    cdef edct.edct_spec s
    cdef edct.edct_window w
    cdef edct.edct_window *wp = NULL
    cdef edct.edct_error err
    cdef edct.edct_region r
    cdef int n
    try:
        fill_spec(&s, spec)
        if window is not None:
            w.x, w.y, w.width, w.height = window
            w.hflip = hflip
            wp = &w
        err_check(edct.edct_prepare_region(edct.edct_get_info(dec), &s, wp, orientation, &r,
                                           &err), &err, name)
        n = edct.edct_get_info(dec).num_components
        return (tuple([r.frequencies[i] for i in range(n)]),
                tuple([(r.rows[i][0], r.rows[i][1]) for i in range(n)]),
                tuple([(r.cols[i][0], r.cols[i][1]) for i in range(n)]))
    finally:
        edct.edct_close(dec)


def find_metadata(const uint8_t[::1] model not None, str name):
    """Locates a bundle's metadata buffer (METADATA_NAME) inside a .tflite flatbuffer.

    Args:
        model: The .tflite bytes.
        name: The model's name (its path, or ``<bytes>``) for error messages.

    Returns:
        (offset, length) of the JSON bytes inside ``model``.

    Raises:
        ModelError: Not a TFLite model, or a corrupt one.
        MetadataNotFoundError: A TFLite model without the entry (not an edge_dct bundle).
    """
    cdef edct.edct_error err
    cdef size_t offset = 0, length = 0
    cdef const uint8_t *ptr = &model[0] if model.shape[0] else NULL
    cdef int status = edct.edct_find_metadata(ptr, model.shape[0], edct.EDCT_METADATA_NAME,
                                              &offset, &length, &err)
    err_check(status, &err, name, model=True)
    return offset, length
