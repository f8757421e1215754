package runtime

// The few ONNX Runtime C API calls that onnxruntime_go does not wrap: the
// execution-provider devices of a plug-in provider (GetEpDevices) and adding
// one to a session (SessionOptionsAppendExecutionProvider_V2), the list of
// providers the library was built with, its build string, and profiling.
//
// They are made through the library's OrtApi table without its header: the
// table is an array of function pointers that only grows from one API
// version to the next, so each call is a fixed slot with the signature the
// C API documents. The slots, the types and the version (24, that of the
// onnxruntime_go release in go.mod) are checked against that release's
// header by TestAPISlotsMatchModuleHeader and
// TestAPICallsCompileAgainstModuleHeader; docs/gpu.md, "The C API table".

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#ifdef __linux__
#include <link.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ONNX Runtime's handles, used only through pointers. Its enumerations
// (OrtLoggingLevel, OrtHardwareDeviceType) pass as unsigned int, the type
// GCC gives an enumeration without negative values (the same in the ABI).
typedef struct OrtEnv OrtEnv;
typedef struct OrtStatus OrtStatus;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtEpDevice OrtEpDevice;
typedef struct OrtHardwareDevice OrtHardwareDevice;

enum {
	nasctl_api_version = 24,
	nasctl_log_error = 3, // OrtLoggingLevel ORT_LOGGING_LEVEL_ERROR
	nasctl_hw_cpu = 0, nasctl_hw_gpu = 1, nasctl_hw_npu = 2, // OrtHardwareDeviceType
};

// The OrtApi slots called, by their index in the table.
enum {
	nasctl_slot_GetErrorMessage = 2,
	nasctl_slot_CreateEnv = 3,
	nasctl_slot_EnableProfiling = 14,
	nasctl_slot_ReleaseEnv = 92,
	nasctl_slot_ReleaseStatus = 93,
	nasctl_slot_GetAvailableProviders = 125,
	nasctl_slot_ReleaseAvailableProviders = 126,
	nasctl_slot_GetBuildInfoString = 254,
	nasctl_slot_GetEpDevices = 303,
	nasctl_slot_SessionOptionsAppendExecutionProvider_V2 = 304,
	nasctl_slot_HardwareDevice_Type = 307,
	nasctl_slot_HardwareDevice_VendorId = 308,
	nasctl_slot_HardwareDevice_Vendor = 309,
	nasctl_slot_HardwareDevice_DeviceId = 310,
	nasctl_slot_EpDevice_EpName = 312,
	nasctl_slot_EpDevice_EpVendor = 313,
	nasctl_slot_EpDevice_Device = 316,
};

// OrtApiBase, what OrtGetApiBase returns.
typedef struct {
	const void *const *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} nasctl_api_base;

static void *nasctl_handle;
static const void *const *nasctl_api;
static OrtEnv *nasctl_env;

// NASCTL_FN is the function in slot name of the table, as a pointer of
// type ret (*)(args).
#define NASCTL_FN(name, ret, ...) ((ret (*)(__VA_ARGS__))nasctl_api[nasctl_slot_##name])

// nasctl_status turns a status into a malloc'd message (NULL for success)
// and releases it.
static char *nasctl_status(OrtStatus *s) {
	if (s == NULL) return NULL;
	char *msg = strdup(NASCTL_FN(GetErrorMessage, const char *, const OrtStatus *)(s));
	NASCTL_FN(ReleaseStatus, void, OrtStatus *)(s);
	return msg;
}

static char *nasctl_dlerror(const char *fallback) {
	const char *e = dlerror();
	return strdup(e != NULL ? e : fallback);
}

// nasctl_bind takes the API of the library at path, which must already be
// loaded (RTLD_NOLOAD: never a second copy), and a reference to the
// process's environment: CreateEnv returns the one that exists.
static char *nasctl_bind(const char *path) {
	void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (h == NULL) return nasctl_dlerror("library not loaded");
	const nasctl_api_base *(*base)(void) = (const nasctl_api_base *(*)(void))dlsym(h, "OrtGetApiBase");
	if (base == NULL) { dlclose(h); return nasctl_dlerror("no OrtGetApiBase"); }
	const void *const *api = base()->GetApi(nasctl_api_version);
	if (api == NULL) {
		dlclose(h);
		char msg[80];
		snprintf(msg, sizeof msg, "the library does not offer ONNX Runtime C API version %d", nasctl_api_version);
		return strdup(msg);
	}
	nasctl_api = api;
	OrtEnv *env = NULL;
	char *err = nasctl_status(NASCTL_FN(CreateEnv, OrtStatus *, unsigned int, const char *, OrtEnv **)(nasctl_log_error, "nasctl", &env));
	if (err != NULL) { nasctl_api = NULL; dlclose(h); return err; }
	nasctl_handle = h;
	nasctl_env = env;
	return NULL;
}

static void nasctl_unbind(void) {
	if (nasctl_env != NULL) NASCTL_FN(ReleaseEnv, void, OrtEnv *)(nasctl_env);
	if (nasctl_handle != NULL) dlclose(nasctl_handle);
	nasctl_env = NULL;
	nasctl_handle = NULL;
	nasctl_api = NULL;
}

static char *nasctl_providers(char ***out, int *n) {
	return nasctl_status(NASCTL_FN(GetAvailableProviders, OrtStatus *, char ***, int *)(out, n));
}

static void nasctl_release_providers(char **p, int n) {
	free(nasctl_status(NASCTL_FN(ReleaseAvailableProviders, OrtStatus *, char **, int)(p, n)));
}

static const char *nasctl_build_info(void) { return NASCTL_FN(GetBuildInfoString, const char *, void)(); }

// nasctl_ep_list lists the environment's EP devices (GetEpDevices); the
// list belongs to the environment.
static OrtStatus *nasctl_ep_list(const OrtEpDevice *const **d, size_t *n) {
	return NASCTL_FN(GetEpDevices, OrtStatus *, const OrtEnv *, const OrtEpDevice *const **, size_t *)(nasctl_env, d, n);
}

static const char *nasctl_ep_name(const OrtEpDevice *d) { return NASCTL_FN(EpDevice_EpName, const char *, const OrtEpDevice *)(d); }

typedef struct {
	const char *ep;
	const char *ep_vendor;
	unsigned int type; // OrtHardwareDeviceType: nasctl_hw_*
	const char *vendor;
	uint32_t vendor_id;
	uint32_t device_id;
} nasctl_ep_device;

// nasctl_ep_devices copies up to cap EP devices into out and sets *n to
// their total. The strings belong to the environment.
static char *nasctl_ep_devices(nasctl_ep_device *out, size_t cap, size_t *n) {
	const OrtEpDevice *const *d = NULL;
	char *err = nasctl_status(nasctl_ep_list(&d, n));
	if (err != NULL) return err;
	for (size_t i = 0; i < *n && i < cap; i++) {
		const OrtHardwareDevice *hw = NASCTL_FN(EpDevice_Device, const OrtHardwareDevice *, const OrtEpDevice *)(d[i]);
		out[i].ep = nasctl_ep_name(d[i]);
		out[i].ep_vendor = NASCTL_FN(EpDevice_EpVendor, const char *, const OrtEpDevice *)(d[i]);
		out[i].type = NASCTL_FN(HardwareDevice_Type, unsigned int, const OrtHardwareDevice *)(hw);
		out[i].vendor = NASCTL_FN(HardwareDevice_Vendor, const char *, const OrtHardwareDevice *)(hw);
		out[i].vendor_id = NASCTL_FN(HardwareDevice_VendorId, uint32_t, const OrtHardwareDevice *)(hw);
		out[i].device_id = NASCTL_FN(HardwareDevice_DeviceId, uint32_t, const OrtHardwareDevice *)(hw);
	}
	return NULL;
}

// nasctl_append_ep adds to so the execution provider ep for its index-th
// device (in GetEpDevices order). *found is the number of devices ep has;
// nothing is appended when index is not below it.
static char *nasctl_append_ep(OrtSessionOptions *so, const char *ep, size_t index, size_t *found) {
	const OrtEpDevice *const *d = NULL;
	size_t n = 0;
	char *err = nasctl_status(nasctl_ep_list(&d, &n));
	if (err != NULL) return err;
	const OrtEpDevice *pick = NULL;
	*found = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(nasctl_ep_name(d[i]), ep) != 0) continue;
		if (*found == index) pick = d[i];
		(*found)++;
	}
	if (pick == NULL) return NULL;
	return nasctl_status(NASCTL_FN(SessionOptionsAppendExecutionProvider_V2, OrtStatus *, OrtSessionOptions *, OrtEnv *,
		const OrtEpDevice *const *, size_t, const char *const *, const char *const *, size_t)(so, nasctl_env, &pick, 1, NULL, NULL, 0));
}

static char *nasctl_enable_profiling(OrtSessionOptions *so, const char *prefix) {
	return nasctl_status(NASCTL_FN(EnableProfiling, OrtStatus *, OrtSessionOptions *, const char *)(so, prefix));
}

// nasctl_dlcheck loads the shared library name as the dynamic loader would
// for the CUDA provider, sets *path to the file it found (malloc'd), and
// unloads it again; on failure it returns the loader's message.
static char *nasctl_dlcheck(const char *name, char **path) {
	dlerror();
	void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) return nasctl_dlerror("cannot be loaded");
#ifdef __linux__
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL && lm->l_name != NULL) *path = strdup(lm->l_name);
#endif
	dlclose(h);
	return NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// cError turns a message from the C helpers into an error and frees it.
func cError(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(C.GoString(msg))
}

// bindAPI takes the C API of the library onnxruntime_go has just loaded from
// path, and a reference to its environment. Call with env.mu held for writing.
func bindAPI(path string) error {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if err := cError(C.nasctl_bind(cp)); err != nil {
		return fmt.Errorf("binding the ONNX Runtime C API of %s: %w", path, err)
	}
	return nil
}

// unbindAPI drops what bindAPI took, before the environment is destroyed.
func unbindAPI() { C.nasctl_unbind() }

// availableProviders returns the execution providers the loaded library was
// built with (GetAvailableProviders). Plug-in providers are not among them.
func availableProviders() ([]string, error) {
	var list **C.char
	var n C.int
	if err := cError(C.nasctl_providers(&list, &n)); err != nil {
		return nil, err
	}
	defer C.nasctl_release_providers(list, n)
	var out []string
	for _, p := range unsafe.Slice(list, int(n)) {
		out = append(out, C.GoString(p))
	}
	return out, nil
}

// buildInfo returns the library's build description (GetBuildInfoString).
func buildInfo() string { return C.GoString(C.nasctl_build_info()) }

// EPDevice is one device an execution provider can run on, as ONNX Runtime
// lists them (GetEpDevices): the CPU for the CPU provider, each GPU for a
// registered CUDA provider.
type EPDevice struct {
	Provider       string `json:"provider"`        // e.g. CUDAExecutionProvider
	ProviderVendor string `json:"provider_vendor"` // who wrote the provider
	Kind           string `json:"kind"`            // cpu, gpu or npu
	Vendor         string `json:"vendor"`          // the hardware's vendor
	VendorID       uint32 `json:"vendor_id"`       // PCI vendor id (0x10de: NVIDIA)
	DeviceID       uint32 `json:"device_id"`       // PCI device id
}

var hardwareKinds = map[C.uint]string{C.nasctl_hw_cpu: "cpu", C.nasctl_hw_gpu: "gpu", C.nasctl_hw_npu: "npu"}

// epDevices lists the devices of every registered execution provider.
func epDevices() ([]EPDevice, error) {
	buf := make([]C.nasctl_ep_device, 64)
	var n C.size_t
	if err := cError(C.nasctl_ep_devices(&buf[0], C.size_t(len(buf)), &n)); err != nil {
		return nil, err
	}
	var out []EPDevice
	for _, d := range buf[:min(int(n), len(buf))] {
		out = append(out, EPDevice{Provider: C.GoString(d.ep), ProviderVendor: C.GoString(d.ep_vendor),
			Kind: hardwareKinds[d._type], Vendor: C.GoString(d.vendor), VendorID: uint32(d.vendor_id), DeviceID: uint32(d.device_id)})
	}
	return out, nil
}

// optionsPointer returns the native OrtSessionOptions behind so, which
// onnxruntime_go keeps in an unexported field "o". Reading it through reflect
// fails with an error, not a crash, if a new release renames it
// (TestOptionsPointer checks it on every test run).
func optionsPointer(so *ort.SessionOptions) (*C.OrtSessionOptions, error) {
	f := reflect.ValueOf(so).Elem().FieldByName("o")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil, errors.New("onnxruntime_go's SessionOptions no longer holds its native pointer in field o")
	}
	return (*C.OrtSessionOptions)(f.UnsafePointer()), nil
}

// appendEP adds provider's index-th device to so with the V2 call, the only
// way to select a plug-in provider. found is the number of devices the
// provider has; nothing is appended when index is not below it.
func appendEP(so *ort.SessionOptions, provider string, index int) (found int, err error) {
	p, err := optionsPointer(so)
	if err != nil {
		return 0, err
	}
	cname := C.CString(provider)
	defer C.free(unsafe.Pointer(cname))
	var n C.size_t
	err = cError(C.nasctl_append_ep(p, cname, C.size_t(index), &n))
	return int(n), err
}

// enableProfiling makes the session write a per-operator profile to a file
// starting with prefix.
func enableProfiling(so *ort.SessionOptions, prefix string) error {
	p, err := optionsPointer(so)
	if err != nil {
		return err
	}
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	return cError(C.nasctl_enable_profiling(p, cp))
}

// loadable reports whether the dynamic loader finds and loads the shared
// library name (a file name, looked up as the loader does: $LD_LIBRARY_PATH,
// the ld.so cache, the system folders), with the path it loaded.
func loadable(name string) (path string, err error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var cp *C.char
	if err := cError(C.nasctl_dlcheck(cn, &cp)); err != nil {
		return "", err
	}
	if cp != nil {
		path = C.GoString(cp)
		C.free(unsafe.Pointer(cp))
	}
	return path, nil
}
