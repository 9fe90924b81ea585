"""Validation errors in words a volunteer reads next to the field: (简体中文, English)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Words = tuple[str, str]

# The last name in an error's location -> how the form labels that field.
FIELD_LABELS: dict[str, Words] = {
    "name": ("姓名", "Name"),
    "id_number": ("证件号码", "ID number"),
    "phone": ("手机号", "Phone"),
    "origin": ("出发地", "Coming from"),
    "destination": ("目的地", "Going to"),
    "reason": ("事由", "Reason"),
    "vehicle_plate": ("车牌号", "Vehicle plate"),
    "volunteer_id": ("值班志愿者", "Volunteer on duty"),
    "registration": ("登记信息", "Registration"),
    "resolution": ("处理方式", "Action"),
    "temperature_c": ("复测体温", "Re-measured temperature"),
    "note": ("备注", "Note"),
    "direction": ("方向", "Direction"),
    "occupant_temperatures_c": ("乘车人体温", "Occupant temperatures"),
    "badge_text": ("工作证", "Badge"),
    "action": ("上岗/离岗", "Start/end"),
    "area": ("消毒区域", "Area"),
    "agent": ("消毒剂", "Disinfectant"),
}
WHOLE_FORM: Words = ("表单", "Form")

# What a pattern mismatch means, per field: the regex itself helps no one at the gate.
PATTERN_HINTS: dict[str, Words] = {
    "id_number": ("应为6至18位字母或数字", "6 to 18 letters or digits"),
    "phone": ("应为5至15位数字，可以+开头", "5 to 15 digits, may start with +"),
    "vehicle_plate": (
        "应为2至12位大写字母、数字或汉字，如 京A12345",
        "2 to 12 capital letters, digits or Chinese characters, like 京A12345",
    ),
    "volunteer_id": ("请先扫工作证上岗", "scan a badge to start a shift first"),
    "area": ("请选择一个区域", "choose one of the areas"),
    "badge_text": (
        "不是工作证二维码，请重新扫描工作证",
        "not a badge's QR code: scan the badge again",
    ),
}

TEMPERATURE_FIELDS = {"temperature_c", "occupant_temperatures_c"}

# pydantic error type -> (zh, en) templates, filled from the error's ctx.
TYPE_WORDS: dict[str, Words] = {
    "missing": ("必填", "required"),
    "string_too_long": ("最多{max_length}个字符", "at most {max_length} characters"),
    "string_type": ("应为文字", "must be text"),
    "float_parsing": ("应为数字", "must be a number"),
    "float_type": ("应为数字", "must be a number"),
    "int_parsing": ("应为整数", "must be a whole number"),
    "int_type": ("应为整数", "must be a whole number"),
    "greater_than_equal": ("不能低于{ge}{unit}", "must be at least {ge}{unit}"),
    "greater_than": ("应高于{gt}{unit}", "must be above {gt}{unit}"),
    "less_than_equal": ("不能高于{le}{unit}", "must be at most {le}{unit}"),
    "less_than": ("应低于{lt}{unit}", "must be below {lt}{unit}"),
    "finite_number": ("应为数字", "must be a number"),
    "too_short": ("至少{min_length}项", "at least {min_length}"),
    "too_long": ("最多{max_length}项", "at most {max_length}"),
    "literal_error": ("应为以下之一：{expected}", "must be one of: {expected}"),
    "extra_forbidden": ("不是此表单的字段", "not a field of this form"),
    "json_invalid": ("无法读取（JSON 格式错误）", "could not be read (invalid JSON)"),
    "model_attributes_type": ("应为一个对象", "must be an object"),
    "dict_type": ("应为一个对象", "must be an object"),
    "model_type": ("应为一个对象", "must be an object"),
    "tuple_type": ("应为列表", "must be a list"),
    "list_type": ("应为列表", "must be a list"),
    "bool_type": ("应为是或否", "must be yes or no"),
    "bool_parsing": ("应为是或否", "must be yes or no"),
}


def field_path(loc: Sequence[str | int]) -> str:
    """The dotted field path the page matches against its inputs ("" for the whole body).

    Args:
        loc: the error location as FastAPI gives it, starting with "body", "path" or "query".

    Returns:
        e.g. "registration.id_number" or "occupant_temperatures_c.1".
    """
    parts = list(loc[1:]) if loc and loc[0] in {"body", "path", "query"} else list(loc)
    # json_invalid puts a character offset after "body"; it is not a field.
    if len(parts) == 1 and isinstance(parts[0], int):
        parts = []
    return ".".join(str(part) for part in parts)


def label(path: str) -> Words:
    """The field's label as the form shows it; an occupant's row by its number."""
    parts = path.split(".") if path else []
    if len(parts) >= 2 and parts[-1].isdigit() and parts[-2] == "occupant_temperatures_c":
        n = int(parts[-1]) + 1
        return (f"乘车人{n}体温", f"Occupant {n} temperature")
    names = [part for part in parts if not part.isdigit()]
    if not names:
        return WHOLE_FORM
    return FIELD_LABELS.get(names[-1], (names[-1], names[-1].replace("_", " ").capitalize()))


def explain(error: Mapping[str, Any]) -> tuple[str, str, str]:
    """One validation error as (field path, zh sentence, en sentence).

    Args:
        error: one entry of pydantic's / FastAPI's `errors()`; its `input` is never used,
            so an ID number typed wrong is not echoed back.

    Returns:
        The path and a sentence per language that starts with the field's label.
    """
    path = field_path(error.get("loc", ()))
    names = [part for part in path.split(".") if part and not part.isdigit()]
    key = names[-1] if names else ""
    ctx = dict(error.get("ctx") or {})
    kind = str(error.get("type", ""))
    zh, en = _words_for(kind, key, ctx, str(error.get("msg", "")))
    label_zh, label_en = label(path)
    return path, f"{label_zh}：{zh}", f"{label_en}: {en}"


def _words_for(kind: str, key: str, ctx: dict[str, Any], msg: str) -> Words:
    if kind == "string_pattern_mismatch":
        return PATTERN_HINTS.get(key, ("格式不对", "wrong format"))
    if kind == "string_too_short":
        if ctx.get("min_length", 1) <= 1:
            return ("不能为空", "must not be empty")
        return (f"至少{ctx['min_length']}个字符", f"at least {ctx['min_length']} characters")
    if kind == "too_short" and key == "occupant_temperatures_c":
        return ("请至少添加一位乘车人", "add at least one occupant")
    if kind == "value_error":
        # A model validator's own sentence; pydantic prefixes it with "Value error, ".
        text = msg.removeprefix("Value error, ")
        return (text, text)
    templates = TYPE_WORDS.get(kind)
    if templates is None:
        return (msg, msg)
    ctx.setdefault("unit", " °C" if key in TEMPERATURE_FIELDS else "")
    try:
        return (templates[0].format(**ctx), templates[1].format(**ctx))
    except (KeyError, IndexError, ValueError):
        return (msg, msg)
