"""How a message is handed over exactly once (docs/handover.md, in code).

One engine, :class:`~airflow_provider_mail.handover.engine.HandOver`, runs the protocol
for every path: the deferrable sensor and poke mode, ``ImapHook.receive`` /
``Pop3Hook.receive``, and the AssetWatcher trigger with ``fetch_claimed``. Its steps are
the document's: peek, write ahead, take (with its reservation), read, mark, give back.

* :mod:`.engine`  the protocol (the only module that decides anything)
* :mod:`.mailbox` what it needs of a mail server (``Mailbox``) and what a poll asks (``Poll``)
* :mod:`.imap`, :mod:`.pop3`  the two mailboxes, over the hooks' sessions
* :mod:`.ledger`  what a sensor task instance claimed, kept across its tries
* :mod:`.after`   what happens to a message after its hand-over (``after_receive``)
* :mod:`.state`   per-mailbox state: POP3 seen ids, Message-IDs of recreated folders,
  owed give-backs, AssetWatcher deliveries
* :mod:`.locks`   the claim locks: host (``flock``) and server (lock folder)
"""
