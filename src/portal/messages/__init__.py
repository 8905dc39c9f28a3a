"""Messages to members (会员关怀): the outbox, its texts, channels, sending and the calendar's messages.

See outbox.py for the API other code calls (``outbox.enqueue``), sender.py for ``portal jobs
send``, occasions.py for birthdays, expiry reminders and the monthly care message, and
consent/ for whom we may write to, on which channel, for which purpose.
"""
