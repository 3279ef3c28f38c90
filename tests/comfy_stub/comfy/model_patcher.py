"""`comfy.model_patcher.ModelPatcher` for a model without weight patches, loaded whole: the attributes and methods
that model management calls, with ComfyUI's signatures and effects (weights moved between the load and offload
devices, loaded size recorded on the model, detach callbacks)."""
from comfy import model_management
from comfy.patcher_extension import CallbacksMP


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.size = size
        self.model = model
        if getattr(self.model, "device", None) is None:
            self.model.device = offload_device
        self.load_device = load_device
        self.offload_device = offload_device
        self.parent = None
        self.callbacks = {}
        self.model_size()
        if not hasattr(self.model, "model_loaded_weight_memory"):
            self.model.model_loaded_weight_memory = 0

    def model_size(self):
        if self.size > 0:
            return self.size
        self.size = model_management.module_size(self.model)
        return self.size

    def loaded_size(self):
        return self.model.model_loaded_weight_memory

    def current_loaded_device(self):
        return self.model.device

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def model_patches_models(self):
        return []

    def model_patches_to(self, device):
        pass

    def model_dtype(self):
        return None

    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False):
        """Loads the whole model (what ComfyUI does for a module without comfy.ops casting, given the memory)."""
        before = self.model.model_loaded_weight_memory
        self.model.to(device_to)
        self.model.device = device_to
        self.model.model_loaded_weight_memory = self.model_size()
        for callback in self.get_all_callbacks(CallbacksMP.ON_LOAD):
            callback(self, device_to, 0, force_patch_weights, True)
        return self.model.model_loaded_weight_memory - before

    def partially_unload(self, device_to, memory_to_free=0):
        freed = self.model.model_loaded_weight_memory
        self.model.to(device_to)
        self.model.model_loaded_weight_memory = 0
        return freed

    def detach(self, unpatch_all=True):
        if unpatch_all:
            self.model.to(self.offload_device)
            self.model.device = self.offload_device
            self.model.model_loaded_weight_memory = 0
        for callback in self.get_all_callbacks(CallbacksMP.ON_DETACH):
            callback(self, unpatch_all)
        return self.model

    def add_callback(self, call_type, callback):
        self.callbacks.setdefault(call_type, {}).setdefault(None, []).append(callback)

    def get_all_callbacks(self, call_type):
        return [c for callbacks in self.callbacks.get(call_type, {}).values() for c in callbacks]
