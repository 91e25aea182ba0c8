"""Extraction of facts, preferences, plans and dated events from chat events."""

from __future__ import annotations

from memsvc.extraction.base import (
    CANDIDATE_KINDS,
    NO_GUIDE,
    Candidate,
    Category,
    Extractor,
    Guide,
    SourceEvent,
)
from memsvc.extraction.dates import ResolvedDate, resolve_dates
from memsvc.extraction.llm import (
    ExtractionError,
    ExtractionRejected,
    ExtractionUnavailable,
    OpenAICompatExtractor,
)
from memsvc.extraction.rules import RulesExtractor
from memsvc.extraction.strict import strict_schema_problems
from memsvc.settings import Settings

__all__ = [
    "CANDIDATE_KINDS",
    "NO_GUIDE",
    "Candidate",
    "Category",
    "ExtractionError",
    "ExtractionRejected",
    "ExtractionUnavailable",
    "Extractor",
    "Guide",
    "OpenAICompatExtractor",
    "ResolvedDate",
    "RulesExtractor",
    "SourceEvent",
    "build_extractor",
    "resolve_dates",
    "strict_schema_problems",
]


def build_extractor(settings: Settings) -> Extractor:
    """The LLM extractor when ``MEMSVC_LLM_BASE_URL`` is set, else the deterministic one."""
    rules = RulesExtractor()
    if not settings.llm_base_url:
        return rules
    return OpenAICompatExtractor(
        settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_seconds,
        fallback=rules,
    )
