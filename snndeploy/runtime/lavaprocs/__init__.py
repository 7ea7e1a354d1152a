"""Lava processes of our own: recorders that write straight into numpy memmaps.

Kept in their own folder because Lava's compiler imports every module in the
folder of a Process to find its ProcessModels.

Why: ``Var.get()`` ships an array to the host one element per message
(measured here: ~58 us per element, 27 s for 470k recorded spikes), which would
dominate every comparison. These recorders receive on an InPort (or read a Var
through a RefPort) each step and write the values into a memory-mapped ``.npy``
file that the host created before the run; the host reads it after the run.
"""
