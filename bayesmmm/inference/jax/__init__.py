"""The JAX backends: NumPyro's, BlackJAX's and nutpie's NUTS over the model's JAX log-density.

- :mod:`~bayesmmm.inference.jax.runtime`: JAX set up (host devices, 64-bit, compilation cache);
- :mod:`~bayesmmm.inference.jax.translate`: the PyMC model's log-density in JAX, cached on disk;
- :mod:`~bayesmmm.inference.jax.program`: the compiled sampling program both backends share
  (:class:`~bayesmmm.inference.jax.program.JaxSampler`);
- :mod:`~bayesmmm.inference.jax.numpyro_nuts`, :mod:`~bayesmmm.inference.jax.blackjax_nuts`: one chain each;
- :mod:`~bayesmmm.inference.jax.nutpie_nuts`: nutpie's Rust sampler calling the translation's gradient.

JAX, BlackJAX, NumPyro and nutpie are imported only when their backend is used.
"""
