"""`comfy.patcher_extension`: the callback names of ModelPatcher (the one the pack uses among them)."""


class CallbacksMP:
    ON_LOAD = "on_load_after"
    ON_DETACH = "on_detach_after"
