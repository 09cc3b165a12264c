"""The page: what the model's kind of data offers (``trainlab.data.kinds.Page``): a drawing pad
for digits, or for photos an upload and, on a phone, the camera; one self-contained HTML
document (no CDN, no fonts, no network), from ``templates/page.html.j2``.

Drawing (mouse, touch or pen, through pointer events) sends the canvas as a PNG to
/api/predict, debounced; the answer shows the class, a bar per class and the image the model
saw. An upload button (a real file input, reachable with the keyboard) sends a file. When the
server wants an API key, the page asks for it and keeps it in memory only.

Example:
    >>> from trainlab.inference import Predictor
    >>> predictor = Predictor("runs/<id>")
    >>> html = render_page(predictor.describe(), predictor.page)
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from trainlab.data.kinds import KINDS, Page, get_kind
from trainlab.errors import ConfigError

# a valid 1×1 transparent GIF, shown before the first prediction
BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

_TEMPLATES = Environment(
    loader=PackageLoader("trainlab.serve", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a name missing from the page's data fails, never shows blank
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(model: dict[str, Any], page: Page | None) -> str:
    """The page for one model.

    Args:
        model: ``Predictor.describe()``: its run id, model, dataset, test accuracy, classes
            and input shape are written in.
        page: the model's kind's ``Page`` (``Predictor.page``): the title, the input
            ("draw" or "photo") and the hint. None: the kind has no page, and serve refuses.
    """
    if page is None:
        raise no_page(model)
    h, w = list(model.get("input_shape") or [1, 28, 28])[-2:]
    accuracy = (model.get("metrics") or {}).get("test_acc")
    return _TEMPLATES.get_template("page.html.j2").render(
        page=page,
        run=model.get("run"),
        model=model.get("model"),
        dataset=model.get("dataset"),
        accuracy=accuracy,
        classes=model["classes"],
        size=f"{h}×{w}",
        # the bars' names as wide as the longest, within reason (a long one is cut with …)
        names_width=min(max([4, *map(len, model["classes"])]) + 1, 16),
        blank=BLANK,
        script_data={
            "classes": model["classes"],
            "run": model.get("run"),
            "input": page.input,
            "hint": page.hint,
            "blank": BLANK,
        },
    )


def no_page(model: dict[str, Any]) -> ConfigError:
    """Why a model whose kind of data has no page cannot be served."""
    kind = get_kind(model["kind"])
    served = sorted(name for name, entry in KINDS.all().items() if entry.page is not None)
    return ConfigError(
        f"trainlab serve has no page for {model.get('checkpoint')}: its model was trained on "
        f"{kind.summary} (dataset '{model.get('dataset')}'), and that kind of data "
        f"('{kind.name}') offers no page to give it inputs. The kinds that do: "
        f"{', '.join(served)}. Score this model with `trainlab eval`, or call it from Python."
    )
