"""Extraction of facts, preferences, plans and dated events from chat events."""

from __future__ import annotations

from memsvc.extraction.base import CANDIDATE_KINDS, Candidate, Extractor, SourceEvent
from memsvc.extraction.dates import ResolvedDate, resolve_dates
from memsvc.extraction.llm import OpenAICompatExtractor
from memsvc.extraction.rules import RulesExtractor
from memsvc.settings import Settings

__all__ = [
    "CANDIDATE_KINDS",
    "Candidate",
    "Extractor",
    "OpenAICompatExtractor",
    "ResolvedDate",
    "RulesExtractor",
    "SourceEvent",
    "build_extractor",
    "resolve_dates",
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
