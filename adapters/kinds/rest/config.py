"""The `rest` kind's configuration: the `[source]` table and each entity's keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1)
    backoff_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    retry_after_max_s: float = Field(300.0, ge=0)


class Pagination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    style: Literal["none", "page", "cursor", "link"] = "none"
    page_param: str = "page"
    size_param: str | None = "page_size"
    page_size: int = Field(100, ge=1)
    first_page: int = 1
    cursor_param: str = "cursor"
    next_cursor_key: str = "next_cursor"
    max_pages: int = Field(100_000, ge=1)


class RestWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = None  # collection for POST; defaults to the entity's path
    item_path: str | None = None  # "{path}/{id}" by default
    # canonical path -> JSON field (dotted for nesting); `columns` is accepted as in the sql kind
    fields: dict[str, str] = Field(..., min_length=1, validation_alias=AliasChoices("fields", "columns"))
    codes: dict[str, dict[str, Any]] = Field(default_factory=dict)  # JSON field -> canonical -> legacy
    id_field: str | None = None  # in the POST response; defaults to the entity's id_field
    version_header: str = "If-Match"
    version_format: str = '"{version}"'
    close_set: dict[str, Any] = Field(default_factory=dict)
    # a value with no field: "ignore" sends the rest and names it in the detail; "reject" refuses
    unmapped: Literal["reject", "ignore"] = "ignore"


class RestEntity(BaseModel):
    """The source-side keys of one `[entities.<name>]` block (mapping keys are ignored here)."""

    model_config = ConfigDict(extra="allow")

    path: str = Field(..., min_length=1)
    items_key: str | None = None  # dotted; None when the body is the list itself
    id_field: str = "id"
    params: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination = Field(default_factory=Pagination)
    updated_since_param: str | None = None
    updated_field: str | None = None
    deleted_field: str | None = None  # a truthy value marks the record deleted
    full_scan_every_s: float | None = Field(None, gt=0)
    write: RestWrite | None = None


class RestSource(BaseModel):
    model_config = ConfigDict(extra="allow")

    base_url: str = Field(..., min_length=1)
    token_env: str | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    rate_limit_per_s: float | None = Field(None, gt=0)
    retry: Retry = Field(default_factory=Retry)
    batch_size: int = Field(500, ge=1)
    verify_tls: bool = True
