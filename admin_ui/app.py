"""Application factory. The app reaches the hub only through `hub` services, given by
the composition root; tests hand in a hub built on a temporary store."""

from __future__ import annotations

import importlib
import pkgutil
import secrets
from typing import Any

from flask import Flask, jsonify, render_template, request

from hub.bootstrap import Hub


def create_app(hub: Hub, *, testing: bool = False, settings: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=hub.config.web.secret_key or secrets.token_hex(32),
        TESTING=testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
    )
    app.config.update(settings or {})
    app.extensions["hub"] = hub
    from admin_ui.auth import init_auth

    init_auth(app)  # sign-in required everywhere but /login, /health and static assets
    for package in ("admin_ui.api", "admin_ui.pages"):
        _register_blueprints(app, package)
    from admin_ui.metrics import bp as metrics_bp

    app.register_blueprint(metrics_bp)  # Prometheus /metrics

    @app.context_processor
    def navigation() -> dict[str, Any]:
        from admin_ui.navigation import nav_items

        return {"nav_items": nav_items()}

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    @app.after_request
    def security_headers(response):  # noqa: ANN001, ANN202
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    @app.errorhandler(404)
    def not_found(error):  # noqa: ANN001, ANN202
        if request.path.startswith("/api/"):
            return jsonify(error="not found", detail=str(error.description)), 404
        return render_template("errors/404.html"), 404

    return app


def _register_blueprints(app: Flask, package_name: str) -> None:
    """Every module of the package that defines `bp` (a Blueprint) is registered."""
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package_name}.{info.name}")
        bp = getattr(module, "bp", None)
        if bp is not None:
            app.register_blueprint(bp)


def current_hub() -> Hub:
    from flask import current_app

    return current_app.extensions["hub"]
