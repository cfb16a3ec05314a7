"""Load control: a scan or a repair run must never become the load that takes a mail
server down (the outage that started this tool was a load storm).

Between mailboxes, a run asks a ``LoadGate`` whether it may start the next one: it
waits while the host is busy (load average per CPU, I/O pressure) and stops starting
work outside its time window, as Ceph's scrub scheduler does with
``osd_scrub_load_threshold`` and ``osd_scrub_begin_hour``. ``priority`` lowers the
worker processes to the idle I/O class and the lowest CPU priority (``ionice -c 3``).
Imports: nothing of ours.
"""
