"""Site visits of leads: slots on the business calendar, booking with a capacity per slot,
reschedule (same id), cancel, reminders, no-shows and the advisor's feedback.

The role files of a plugin, for this sub-domain: ``slots.py`` (pure slot arithmetic),
``models.py``, ``service.py``, ``store.py``, ``routes.py``, ``console.py``. The crm plugin's
``__init__`` registers their routes, jobs, pages and events.
"""
