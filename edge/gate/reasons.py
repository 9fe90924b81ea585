"""Reason codes of gate decisions, in words a volunteer reads at arm's length (zh, en)."""

from __future__ import annotations

from edge.credentials.reasons import Reason

# code -> (简体中文, English). The console shows these; events carry only the codes.
REASON_TEXT: dict[str, tuple[str, str]] = {
    "red-code": ("红码：禁止通行，上报", "Red code: stop and report"),
    "yellow-code": ("黄码：登记后放行", "Yellow code: register before passing"),
    "fever": ("体温异常：留观或劝返", "Fever: observation room or turn back"),
    "re-measure": ("体温偏高：请复测", "Temperature high: measure again"),
    "measure-temperature": ("未测体温：请测温", "No temperature: take it now"),
    "temperature-implausible": ("体温读数异常：请复测", "Implausible reading: measure again"),
    "too-far": ("请靠近测温", "Too far: step closer and measure again"),
    "too-close": ("请稍后退再测温", "Too close: step back and measure again"),
    "no-code": ("无健康码：请人工登记", "No code: register by hand"),
    "household-quota": ("本周出门次数已用完", "Household pass: weekly exits used up"),
    "code-reused": ("此码刚在其他卡口使用", "Code just used at another gate"),
    "test-proof-missing": ("缺少核酸阴性证明", "No negative test on record"),
    "test-proof-expired": ("核酸证明已过期", "Negative test too old for this site"),
    "not-a-pass": ("此码不是通行码", "This code is not a pass"),
    "vehicle-fever": ("车内有人体温异常", "An occupant has a fever"),
    "outbox-full": ("无法记录：请人工处理并报告", "Cannot record: handle by hand and report"),
    "unknown-hold": ("该留观记录已处理", "This hold was already resolved"),
    "registration-missing": ("请先登记", "Register this person first"),
    "not-a-badge": ("请扫描志愿者工作证", "Scan a volunteer badge"),
    "sensor-reading-required": (
        "测温仪正常：请到测温仪前复测，不能手动输入体温",
        "Thermometer works: measure again at it, a typed temperature is not accepted",
    ),
    "code-refused": (
        "伪造、未知签发者或已撤销的码不能放行：只能劝返",
        "Forged, unknown-issuer or revoked code: never let through, only turn back",
    ),
    "override-not-allowed": ("本站不允许主管放行", "This site allows no override"),
    "supervisor-required": ("只有主管工作证可以放行", "Only a supervisor's badge can override"),
    "nothing-to-override": (
        "主管放行只用于被拒的码，其他原因照常处理",
        "An override is only for a refused code; other reasons are handled as usual",
    ),
    Reason.TOO_LARGE: ("码过大，无法读取", "Code too large to read"),
    Reason.BAD_PREFIX: ("不是健康码", "Not a health code"),
    Reason.BASE45: ("码已损坏", "Code damaged"),
    Reason.ZLIB: ("码已损坏", "Code damaged"),
    Reason.CBOR: ("码已损坏", "Code damaged"),
    Reason.COSE: ("码已损坏", "Code damaged"),
    Reason.UNKNOWN_KID: ("签发者未知：疑似伪造", "Unknown issuer: possibly forged"),
    Reason.BAD_SIGNATURE: ("签名无效：伪造码", "Bad signature: forged code"),
    Reason.NOT_YET_VALID: ("码尚未生效", "Code not yet valid"),
    Reason.EXPIRED: ("码已过期", "Code expired"),
    Reason.KEY_USAGE: ("签发者无权签发此类码", "Issuer may not sign this kind of code"),
    Reason.SCHEMA_INVALID: ("码内容无效", "Code content invalid"),
    Reason.REVOKED: ("码已被撤销", "Code revoked"),
    Reason.RULE_FAILED: ("不符合通行规则", "Entry rules not met"),
}

# The checkpoint's refusals of a volunteer's action: in the table for the console to say,
# never a reason of a decision or a hold.
ACTION_REFUSALS = frozenset(
    {
        "unknown-hold", "registration-missing", "not-a-badge", "sensor-reading-required",
        "code-refused", "override-not-allowed", "supervisor-required", "nothing-to-override",
    }
)  # fmt: skip


def words(code: str, language: str = "en") -> str:
    """The reason in `language` ("zh" or "en"); the code itself when it has no text."""
    zh, en = REASON_TEXT.get(code, (code, code))
    return zh if language == "zh" else en
