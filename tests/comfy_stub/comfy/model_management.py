"""`comfy.model_management` on a CPU-only machine (ComfyUI started with --cpu): the loaded-model list, loading,
freeing and unloading as ComfyUI does them (LoadedModel holds its ModelPatcher weakly, as there), and the interrupt
flag that /interrupt sets."""
import threading
import weakref

import torch

current_loaded_models = []


def get_torch_device():
    return torch.device("cpu")


def unet_offload_device():
    return torch.device("cpu")


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False):
    return False


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False):
    return False


def soft_empty_cache(force=False):
    pass


def module_size(module):
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


class LoadedModel:
    def __init__(self, model):
        self._model = weakref.ref(model)
        self.device = model.load_device
        self.currently_used = True

    @property
    def model(self):
        return self._model()

    def model_load(self, lowvram_model_memory=0, force_patch_weights=False):
        self.model.partially_load(self.device, 1e32, force_patch_weights=force_patch_weights)
        return self.model.model

    def model_unload(self, memory_to_free=None, unpatch_weights=True):
        if (memory_to_free is not None and memory_to_free < self.model.loaded_size()
                and self.model.partially_unload(self.model.offload_device, memory_to_free) >= memory_to_free):
            return False
        self.model.detach(unpatch_weights)
        return True

    def __eq__(self, other):
        return self.model is other.model


def free_memory(memory_required, device, keep_loaded=()):
    """Unloads models on `device` (not in keep_loaded), most recently loaded last, until `memory_required` bytes are
    freed (ComfyUI stops once the device has that much free memory; a stub has no free-memory reading)."""
    unloaded = []
    freed = 0
    for loaded in reversed(list(current_loaded_models)):
        if freed >= memory_required:
            break
        if loaded.device == device and loaded not in keep_loaded and loaded.model is not None:
            size = loaded.model.loaded_size()
            if loaded.model_unload(memory_required - freed):
                current_loaded_models.remove(loaded)
                unloaded.append(loaded)
            freed += size
    return unloaded


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False):
    current_loaded_models[:] = [m for m in current_loaded_models if m.model is not None]
    for model in models:
        loaded = LoadedModel(model)
        if loaded in current_loaded_models:
            current_loaded_models.remove(loaded)
        loaded.model_load(0, force_patch_weights=force_patch_weights)
        current_loaded_models.insert(0, loaded)


def loaded_models(only_currently_used=False):
    return [m.model for m in current_loaded_models if m.currently_used or not only_currently_used]


def unload_all_models():
    free_memory(1e30, get_torch_device())


class InterruptProcessingException(Exception):
    pass


interrupt_processing_mutex = threading.RLock()
interrupt_processing = False


def interrupt_current_processing(value=True):
    global interrupt_processing
    with interrupt_processing_mutex:
        interrupt_processing = value


def processing_interrupted():
    with interrupt_processing_mutex:
        return interrupt_processing


def throw_exception_if_processing_interrupted():
    global interrupt_processing
    with interrupt_processing_mutex:
        if interrupt_processing:
            interrupt_processing = False
            raise InterruptProcessingException()
