"""A bounded YAML reader for `bootstrap_values`: refuses aliases, big and deep documents before building any value.

yaml.safe_load expands anchors/aliases (a 398-byte "billion laughs" costs seconds and
tens of MB) and recurses per nesting level (a deep document raises RecursionError).
Here the document is composed by a SafeLoader that refuses every alias and counts
depth as nodes start, so nothing is expanded or stringified before it is accepted.
"""

import yaml

MAX_BYTES = 64 * 1024
MAX_DEPTH = 8


class BadDocument(ValueError):
    pass


class BoundedLoader(yaml.SafeLoader):
    """Composes without aliases and with at most MAX_DEPTH nested collections."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise BadDocument("aliases are not allowed")
        if self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise BadDocument(f"nested deeper than {MAX_DEPTH} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise BadDocument("anchors are not allowed")
        return super().compose_node(parent, index)


def load(text):
    """The mapping of a bootstrap values document; BadDocument with a reason otherwise."""
    if not isinstance(text, (bytes, str)):  # e.g. a JSON object where the file's text belongs
        raise BadDocument("must be a YAML document (a file or its text)")
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise BadDocument(f"larger than {MAX_BYTES} bytes")
        text = text.decode()
    if len(text.encode()) > MAX_BYTES:
        raise BadDocument(f"larger than {MAX_BYTES} bytes")
    try:
        loader = BoundedLoader(text)
        try:
            values = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise BadDocument(f"not a YAML file: {str(err)[:200]}") from None
    except BadDocument:
        raise
    # A value its tag cannot build: 2024-13-45 (ValueError), `!!int abc`, 5,000 digits, `!!bool maybe` (KeyError).
    except (ValueError, ArithmeticError, LookupError, TypeError) as err:
        raise BadDocument(f"a value cannot be read: {str(err)[:200]}") from None
    if not isinstance(values, dict):
        raise BadDocument("must be a YAML mapping")
    return values
