"""Rendering a changed config back to text.

Plain JSON output, 2-space indent. (A comment-preserving patcher for hand-edited
JSON5 files replaces this when the original text has comments.)
"""

from __future__ import annotations

import json
from typing import Any


def render(original_text: str, original: dict[str, Any], data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
