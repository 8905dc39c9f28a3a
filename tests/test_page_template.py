"""views.rendering.PageTemplate: the cheaper import check gives what Jinja2's own gives."""
from __future__ import annotations

from jinja2 import DictLoader, Environment

from portal.views.rendering import PageTemplate

TEMPLATES = {
    "m.html": "{% macro who() %}{{ name | default('nobody') }}{% endmacro %}",
    "page.html": '{% import "m.html" as m %}[{{ m.who() }}]',
    "other.html": '{% import "m.html" as m %}({{ m.who() }})',
}


def _env(template_class) -> Environment:
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True)
    env.template_class = template_class
    return env


def test_an_import_sees_the_pages_own_globals_and_later_ones_as_jinja2_does():
    from jinja2 import Template
    for cls in (Template, PageTemplate):
        env = _env(cls)
        assert env.get_template("page.html").render() == "[nobody]"
        # A page with a global of its own: the imported module is built for it.
        assert env.get_template("other.html", globals={"name": "other"}).render() == "(other)"
        assert env.get_template("page.html").render() == "[nobody]"  # the cached module again
        env.globals["name"] = "everyone"  # a global added after the first imports
        env.cache.clear()
        assert env.get_template("page.html").render() == "[everyone]", cls


def test_the_cached_module_is_reused_when_the_page_has_nothing_more():
    env = _env(PageTemplate)
    page = env.get_template("page.html")
    page.render()
    first = env.get_template("m.html")._module
    page.render()
    assert first is not None and env.get_template("m.html")._module is first
