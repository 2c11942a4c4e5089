"""Photo galleries of projects and units: processing, storage (``ctx.storage``), API and
console."""
