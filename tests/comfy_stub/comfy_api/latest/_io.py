"""Socket types, schema and node base class with ComfyUI's V3 names and the `/object_info` (V1) layout."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"


def _pruned(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class Input:
    """A socket input; widget options (default, min, max, options, ...) are kept as given."""

    Parent: type = None

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                 lazy: bool | None = None, **options):
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.options = options

    @property
    def io_type(self) -> str:
        return self.Parent.io_type

    def as_dict(self) -> dict:
        return _pruned({"display_name": self.display_name, "tooltip": self.tooltip, "lazy": self.lazy,
                        **self.options})


class Output:
    Parent: type = None

    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False):
        self.id = id
        self.display_name = display_name
        self.tooltip = tooltip
        self.is_output_list = is_output_list

    @property
    def io_type(self) -> str:
        return self.Parent.io_type


def _socket_type(io_type: str) -> type:
    """A socket type class with nested Input/Output classes bound to `io_type`, like ComfyUI's `comfytype`."""
    cls = type(io_type.title(), (), {"io_type": io_type})
    cls.Input = type("Input", (Input,), {"Parent": cls})
    cls.Output = type("Output", (Output,), {"Parent": cls})
    return cls


def Custom(io_type: str) -> type:
    return _socket_type(io_type)


Image = _socket_type("IMAGE")
Mask = _socket_type("MASK")
Audio = _socket_type("AUDIO")
Video = _socket_type("VIDEO")
Boolean = _socket_type("BOOLEAN")
Int = _socket_type("INT")
Float = _socket_type("FLOAT")
String = _socket_type("STRING")
Combo = _socket_type("COMBO")


class _ComboInput(Input):
    def __init__(self, id: str, options: list | None = None, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, lazy: bool | None = None, **widget):
        super().__init__(id, display_name, optional, tooltip, lazy, options=options, **widget)


Combo.Input = type("Input", (_ComboInput,), {"Parent": Combo})


@dataclass
class Schema:
    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list = None
    outputs: list = None
    hidden: list = None
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    not_idempotent: bool = False

    def validate(self) -> None:
        """ComfyUI's check: input and output ids are unique, within and across the lists."""
        ids_in = [i.id for i in self.inputs or []]
        ids_out = [o.id for o in self.outputs or [] if o.id is not None]
        if len(set(ids_in)) != len(ids_in) or len(set(ids_out)) != len(ids_out) or set(ids_in) & set(ids_out):
            raise ValueError(f"{self.node_id}: input/output ids are not unique: {ids_in} {ids_out}")


class ComfyNode:
    """V3 node base: everything is a classmethod, the class keeps no state."""

    hidden = None  # ComfyUI sets a HiddenHolder on a per-run clone of the class

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        schema = cls.define_schema()
        schema.validate()
        return schema

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict[str, Any]:
        """The node's entry in `/object_info`, in ComfyUI's layout."""
        schema = cls.GET_SCHEMA()
        inputs: dict[str, dict] = {"required": {}}
        for i in schema.inputs or []:
            inputs.setdefault("optional" if i.optional else "required", {})[i.id] = (i.io_type, i.as_dict())
        for h in schema.hidden or []:
            inputs.setdefault("hidden", {})[h.name] = (h.value,)
        outputs = schema.outputs or []
        return {
            "input": inputs,
            "input_order": {k: list(v) for k, v in inputs.items()},
            "output": [o.io_type for o in outputs],
            "output_is_list": [o.is_output_list for o in outputs],
            "output_name": [o.display_name or o.io_type for o in outputs],
            "output_tooltips": [o.tooltip for o in outputs],
            "name": schema.node_id,
            "display_name": schema.display_name,
            "category": schema.category,
            "description": schema.description,
            "output_node": schema.is_output_node,
            "deprecated": schema.is_deprecated,
            "experimental": schema.is_experimental,
            "python_module": "custom_nodes.test",
        }


class NodeOutput:
    def __init__(self, *args: Any, ui=None, expand: dict | None = None, block_execution: str | None = None):
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self):
        return self.args if self.args else None

    def __getitem__(self, index):
        return self.args[index]
