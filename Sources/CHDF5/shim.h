#ifndef TENDON_CHDF5_SHIM_H
#define TENDON_CHDF5_SHIM_H
// libhdf5 (Debian hdf5-serial). Its type, property-list and flag constants are macros over globals that
// call H5open() through a comma expression, which Swift cannot import: these accessors expand them.
#include <hdf5.h>

static inline hid_t tendon_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t tendon_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t tendon_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t tendon_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t tendon_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t tendon_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t tendon_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t tendon_h5s_all(void) { return H5S_ALL; }
static inline hid_t tendon_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t tendon_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t tendon_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t tendon_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline unsigned tendon_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned tendon_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned tendon_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hsize_t tendon_h5s_unlimited(void) { return H5S_UNLIMITED; }
/// Silences the library's own error stack printing: Tendon reports failures itself, in one line.
static inline void tendon_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

#endif
