# Declarations of edct.h used by the Cython wrapper (only what is used).
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint64_t


cdef extern from "edct.h" nogil:
    int EDCT_MAX_COMPONENTS
    unsigned long long EDCT_DEFAULT_MAX_PIXELS
    int EDCT_DEFAULT_MAX_SCANS
    const char *EDCT_METADATA_NAME

    enum edct_status:
        EDCT_OK
        EDCT_ERR_INVALID
        EDCT_ERR_UNSUPPORTED
        EDCT_ERR_TOO_LARGE
        EDCT_ERR_NOMEM
        EDCT_ERR_ARGUMENT
        EDCT_ERR_ABORTED

    ctypedef struct edct_error:
        int status
        int code
        long offset
        char message[200]
        int num_warnings
        char first_warning[200]

    ctypedef struct edct_component:
        int id
        int h_samp
        int v_samp
        int width_in_blocks
        int height_in_blocks
        int quant_tbl_no
        uint16_t quant[64]

    ctypedef struct edct_info:
        int width
        int height
        int num_components
        int precision
        int progressive
        int arithmetic
        int restart_interval
        int orientation
        int color_space
        int max_h_samp
        int max_v_samp
        edct_component comp[4]

    ctypedef struct edct_options:
        uint64_t max_pixels
        int max_scans
        int strict
        int keep_markers

    ctypedef struct edct_decoder:
        pass

    void edct_default_options(edct_options *opts)
    edct_decoder *edct_open(const uint8_t *data, size_t size, const edct_options *opts,
                            edct_error *err)
    const edct_info *edct_get_info(const edct_decoder *dec)
    int edct_decode_planes(edct_decoder *dec, int16_t *const *planes, int dequantize,
                           uint16_t (*quant_out)[64], edct_error *err)
    void edct_close(edct_decoder *dec)
    const char *edct_status_name(int status)

    enum edct_resize_mode:
        EDCT_RESIZE_SHORTER_SIDE
        EDCT_RESIZE_STRETCH

    enum edct_layout:
        EDCT_LAYOUT_SPLIT
        EDCT_LAYOUT_MERGED

    enum edct_dtype:
        EDCT_FLOAT32
        EDCT_INT8

    ctypedef struct edct_spec:
        int grid_h
        int grid_w
        int resize_mode
        int resize_size
        int layout
        int num_channels[3]
        uint8_t channels[3][64]
        int normalize
        float mean[3][64]
        float std[3][64]

    ctypedef struct edct_window:
        double x
        double y
        double width
        double height
        int hflip

    ctypedef struct edct_output:
        int dtype
        void *tensor[2]
        float scale[2]
        int zero_point[2]

    ctypedef struct edct_workspace:
        pass

    edct_workspace *edct_workspace_new()
    void edct_workspace_free(edct_workspace *ws)
    void edct_oriented_size(const edct_info *info, int *width, int *height)
    edct_window edct_eval_window(const edct_spec *spec, int width, int height)
    int edct_prepare(edct_decoder *dec, const edct_spec *spec, const edct_window *window,
                     int apply_orientation, const edct_output *out, edct_workspace *workspace,
                     edct_error *err)

    enum edct_subsampling:
        EDCT_SUB_444
        EDCT_SUB_422
        EDCT_SUB_420
        EDCT_SUB_440

    ctypedef struct edct_region:
        uint8_t frequencies[4]
        int rows[4][2]
        int cols[4][2]

    ctypedef struct edct_encode_options:
        int quality
        int use_tables
        uint16_t tables[2][64]
        int subsampling
        int optimize
        int progressive
        int restart_interval
        int keep_markers
        int use_keep
        edct_region keep

    void edct_default_encode_options(edct_encode_options *opts)
    int edct_encode(const uint8_t *pixels, int width, int height, int components, size_t stride,
                    const edct_encode_options *opts, uint8_t **out, size_t *out_size,
                    edct_error *err)
    int edct_transcode(edct_decoder *dec, const edct_encode_options *opts, uint8_t **out,
                       size_t *out_size, edct_error *err)
    void edct_free(void *p)

    int edct_prepare_region(const edct_info *info, const edct_spec *spec,
                            const edct_window *window, int apply_orientation, edct_region *region,
                            edct_error *err)

    int edct_find_metadata(const uint8_t *model, size_t size, const char *name, size_t *offset,
                           size_t *length, edct_error *err)


# Internal hooks (edct_internal.h) for tests: which entropy decoder ran, and forcing libjpeg's.
cdef extern from "edct_internal.h" nogil:
    enum edct__path:
        EDCT__PATH_NONE
        EDCT__PATH_LIBJPEG
        EDCT__PATH_BUILTIN
        EDCT__PATH_FALLBACK

    int edct__entropy_path(const edct_decoder *dec)
    void edct__disable_builtin(edct_decoder *dec)
