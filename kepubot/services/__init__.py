"""Services: the workflow rules (review levels, roles, schedules, retraction, notifications and
what each change means in the audit trail), on top of the storage repositories of
``kepubot.queue`` (docs/architecture.md §17). No SQL here."""
