"""GAN plugins: the `gan` and `dcgan` architectures, the `adversarial` objective and
`kplug sample`."""
