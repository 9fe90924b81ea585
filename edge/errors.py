"""Exception hierarchy shared by the node, the gateway and the tools."""


class GatepostError(Exception):
    """Base of every error Gatepost raises on purpose."""


class ContractError(GatepostError):
    """A message does not fit the MQTT contract."""


class UnknownTopic(ContractError):
    """A topic under the project prefix that the contract does not define."""

    def __init__(self, topic: str, why: str) -> None:
        super().__init__(f"unknown topic {topic!r}: {why}")
        self.topic = topic
        self.why = why


class PayloadInvalid(ContractError):
    """A payload that does not match the model its topic requires.

    `problems` holds one "field.path: what is wrong" line per failing field, so a
    dead-letter row or a log line names the field without re-parsing.
    """

    def __init__(self, topic: str, model: str, problems: list[str]) -> None:
        super().__init__(f"{topic}: payload is not a valid {model}: " + "; ".join(problems))
        self.topic = topic
        self.model = model
        self.problems = problems


class CredentialError(GatepostError):
    """A credential, key or signed list could not be used."""
