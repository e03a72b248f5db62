/* Checks the declarations in src/lib.rs against espeak-ng's own headers at
 * every build: a signature or a constant that stops matching is a compile
 * error. Compiled only, never linked. */
#include <espeak-ng/speak_lib.h>
#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/encoding.h>
#include "dictionary.h"
#include "translate.h"

_Static_assert(AUDIO_OUTPUT_SYNCHRONOUS == 2, "AUDIO_OUTPUT_SYNCHRONOUS");
_Static_assert(sizeof(espeak_AUDIO_OUTPUT) == sizeof(int), "espeak_AUDIO_OUTPUT is an int");
_Static_assert(espeakINITIALIZE_DONT_EXIT == 0x8000, "espeakINITIALIZE_DONT_EXIT");
_Static_assert(EE_OK == 0, "EE_OK");
_Static_assert(sizeof(espeak_ERROR) == sizeof(int), "espeak_ERROR is an int");
_Static_assert(espeakCHARS_AUTO == 0, "espeakCHARS_AUTO");
_Static_assert(espeakCHARS_UTF8 == 1, "espeakCHARS_UTF8");
_Static_assert(espeakPHONEMES_IPA == 0x02, "espeakPHONEMES_IPA");
_Static_assert(ESPEAKNG_ENCODING_ISO_8859_1 == 2, "ESPEAKNG_ENCODING_ISO_8859_1");
_Static_assert(sizeof(espeak_ng_ENCODING) == sizeof(int), "espeak_ng_ENCODING is an int");
_Static_assert(sizeof(espeak_ng_STATUS) == sizeof(int), "espeak_ng_STATUS is an int");

/* Each function and variable with the type src/lib.rs gives it. */
void vivace_espeak_abi_check(void);
void vivace_espeak_abi_check(void)
{
	int (*initialize)(espeak_AUDIO_OUTPUT, int, const char *, int) = espeak_Initialize;
	espeak_ERROR (*terminate)(void) = espeak_Terminate;
	const char *(*info)(const char **) = espeak_Info;
	espeak_ERROR (*set_voice)(const char *) = espeak_SetVoiceByName;
	const char *(*text_to_phonemes)(const void **, int, int) = espeak_TextToPhonemes;
	espeak_ng_TEXT_DECODER *(*create)(void) = create_text_decoder;
	espeak_ng_STATUS (*decode)(espeak_ng_TEXT_DECODER *, const void *, espeak_ng_ENCODING, int) =
		text_decoder_decode_string_multibyte;
	const void *(*buffer)(espeak_ng_TEXT_DECODER *) = text_decoder_get_buffer;
	void (*clause)(Translator *, int *, char **, int *) = TranslateClauseWithTerminator;
	const char *(*phonemes)(int) = GetTranslatedPhonemeString;
	Translator **current_translator = &translator;
	espeak_ng_TEXT_DECODER **decoder = &p_decoder;
	(void)initialize; (void)terminate; (void)info; (void)set_voice; (void)text_to_phonemes; (void)create; (void)decode; (void)buffer;
	(void)clause; (void)phonemes; (void)current_translator; (void)decoder;
}
