"""The names a loop's events and handler statuses go by.

>>> EVENTS[0], EVENTS[-1], HALT_LOOP
('started', 'completed', 'halt_loop')
"""

EVENTS = ("started", "epoch_started", "iteration_started", "iteration_completed",
          "epoch_completed", "epoch_halted", "halted", "completed")
CONTINUE, HALT_EPOCH, HALT_LOOP = "continue", "halt_epoch", "halt_loop"
STATUSES = (CONTINUE, HALT_EPOCH, HALT_LOOP)  # in order of strength: the strongest one wins
